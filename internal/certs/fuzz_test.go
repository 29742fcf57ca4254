package certs

import "testing"

// FuzzParseCertificates: whatever a file in trusted/ holds, parsing it
// returns certificates or says why not, and never panics.
func FuzzParseCertificates(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := parseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no certificate and no error")
		}
		for _, c := range certs {
			if c == nil || len(c.Raw) == 0 || len(c.Raw) > len(data) {
				t.Fatalf("certificate %v out of %d bytes", c, len(data))
			}
		}
	})
}
