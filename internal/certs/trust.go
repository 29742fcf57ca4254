package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxTrustFileSize bounds a file LoadTrust reads: a certificate is a few
// KiB, a bundle of them well under this.
const MaxTrustFileSize = 1 << 20

// Trust is the publisher certificates LoadTrust read.
type Trust struct {
	Pool  *x509.CertPool
	Certs []*x509.Certificate
	// Problems names each file that could not be read or held a
	// certificate that does not parse; its other certificates are used.
	Problems []*FileError
}

// FileError is a file LoadTrust could not use, or not all of.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// LoadTrust reads the certificates of trusted publishers from path: a
// file, or each file of a folder (following links) but hidden ones and
// folders. A file holds PEM certificates, any number, as openssl writes
// them (its other PEM blocks, such as keys, are ignored), or one DER
// certificate, as Windows exports a .cer; its name does not matter. A
// file that cannot be used is listed in Problems rather than failing the
// others. The error is for path itself (wrapping fs.ErrNotExist when it
// does not exist).
func LoadTrust(path string) (*Trust, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	t := &Trust{Pool: x509.NewCertPool()}
	for _, f := range files {
		certs, err := readTrustFile(f)
		if errors.Is(err, errFolder) {
			continue
		}
		for _, c := range certs {
			t.Pool.AddCert(c)
			t.Certs = append(t.Certs, c)
		}
		if err != nil {
			t.Problems = append(t.Problems, &FileError{Path: f, Err: err})
		}
	}
	return t, nil
}

// errFolder marks a folder among the files, which LoadTrust passes over.
var errFolder = errors.New("a folder")

// readTrustFile returns the certificates of one file, and an error when
// it could not be read or any of it failed to parse.
func readTrustFile(path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, errFolder
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxTrustFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTrustFileSize {
		return nil, fmt.Errorf("more than the %d bytes a certificate file may have", MaxTrustFileSize)
	}
	return parseCertificates(data)
}

// parseCertificates returns the PEM certificates of data, or the one DER
// certificate data is, and an error naming what did not parse.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var (
		certs  []*x509.Certificate
		others []string
		bad    error
		blocks int
	)
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		blocks++
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("PEM block %d: %w", blocks, err)
			}
			continue
		}
		certs = append(certs, c)
	}
	switch {
	case bad != nil || len(certs) > 0:
		return certs, bad
	case blocks > 0:
		return nil, fmt.Errorf("holds no certificate, only PEM %s", strings.Join(others, ", "))
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER certificate (%v)", err)
	}
	return []*x509.Certificate{c}, nil
}
