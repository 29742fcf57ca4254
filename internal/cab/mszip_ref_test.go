package cab

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
)

// flateMSZIP is a reference MSZIP decoder built on compress/flate, used to
// check the package's own inflate in tests and fuzzing.
type flateMSZIP struct {
	fr   io.ReadCloser
	src  bytes.Reader
	buf  []byte
	hist int
}

func (d *flateMSZIP) decode(in []byte, n int) ([]byte, error) {
	if d.buf == nil {
		d.buf = make([]byte, mszipHistory+maxUncompBlock)
	}
	if len(in) < 2 || in[0] != 'C' || in[1] != 'K' {
		return nil, errors.New("no CK")
	}
	d.src.Reset(in[2:])
	dict := d.buf[:d.hist]
	if d.fr == nil {
		d.fr = flate.NewReaderDict(&d.src, dict)
	} else if err := d.fr.(flate.Resetter).Reset(&d.src, dict); err != nil {
		return nil, err
	}
	out := d.buf[d.hist : d.hist+n]
	if _, err := io.ReadFull(d.fr, out); err != nil {
		return nil, fmt.Errorf("short: %w", err)
	}
	var extra [1]byte
	if k, err := d.fr.Read(extra[:]); k > 0 || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not at end: %d %v", k, err)
	}
	if total := d.hist + n; total > mszipHistory {
		copy(d.buf, d.buf[total-mszipHistory:total])
		d.hist = mszipHistory
	} else {
		d.hist = total
	}
	return d.buf[d.hist-n : d.hist], nil
}
