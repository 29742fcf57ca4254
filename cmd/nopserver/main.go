// Command nopserver is the reference the poll benchmark compares against:
// echo on the same TLS stack as deviceupdate, answering every poll with a
// fixed "nothing to offer" and doing nothing else.
//
//	go run ./cmd/nopserver -certs DIR -addr 127.0.0.1:0
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate/internal/certs"
)

const answer = `<?xml version="1.0" encoding="UTF-8"?>
<Response><NumOfFiles>0</NumOfFiles><PollIntervalSeconds>86400</PollIntervalSeconds><PeerSharing Enabled="false" Port="4051"></PeerSharing></Response>`

func main() {
	certsDir := flag.String("certs", "./certs", "folder with server.crt and server.key")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	plain := flag.Bool("http", false, "serve plain HTTP instead of HTTPS")
	flag.Parse()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/RequestHandler/ucdevice.upx", func(c echo.Context) error {
		_, _ = io.Copy(io.Discard, c.Request().Body)
		return c.Blob(http.StatusOK, "text/xml; charset=utf-8", []byte(answer))
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: e}
	if *plain {
		err = srv.Serve(ln)
	} else {
		pair, perr := certs.LoadServer(*certsDir)
		if perr != nil {
			fmt.Fprintln(os.Stderr, perr)
			os.Exit(1)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		err = srv.ServeTLS(ln, "", "")
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
