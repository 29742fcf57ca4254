// Package catalog reads, verifies and writes Windows security catalogs
// (.cat files): a PKCS#7 SignedData whose content is a certificate trust
// list (CTL, OID 1.3.6.1.4.1.311.10.1) of members. Each member names a file
// by its hash: the member's subject identifier (its tag) is the SHA-1 or
// SHA-256 of the file's bytes, as makecat writes for flat files, and an
// SpcIndirectData attribute repeats the digest with its algorithm.
//
// The trust list is modelled here with encoding/asn1, because real makecat
// catalogs carry a catalog-level extension block and member attributes that
// relic's CertTrustList does not decode. Signatures and chains are checked
// with relic's pkcs7 and pkcs9 packages.
package catalog

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf16"

	"github.com/sassoftware/relic/v7/lib/pkcs7"
	"github.com/sassoftware/relic/v7/lib/pkcs9"
)

// MaxSize is the largest catalog Parse accepts. A catalog of a few
// thousand members is well under 1 MiB.
const MaxSize = 8 << 20

// Sentinel errors; check them with errors.Is.
var (
	// ErrFormat means the bytes are not a security catalog.
	ErrFormat = errors.New("not a valid security catalog")
	// ErrUnsigned means the catalog carries no signature.
	ErrUnsigned = errors.New("catalog is not signed")
	// ErrSignature means the signature does not match the catalog's content.
	ErrSignature = errors.New("catalog signature does not verify")
	// ErrUntrusted means the signature is intact but its certificate does
	// not chain to a trusted publisher for code signing at the signing time
	// (unknown issuer, expired, wrong key usage).
	ErrUntrusted = errors.New("catalog signer is not trusted")
)

// Object identifiers of the catalog format.
var (
	OIDCertTrustList     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 10, 1}
	OIDCatalogList       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 12, 1, 1}
	OIDCatalogListMember = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 12, 1, 2}
	OIDCatalogMember2    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 12, 1, 3}
	OIDNameValue         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 12, 2, 1}
	OIDMemberInfo2       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 12, 2, 3}
	OIDSpcIndirectData   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	OIDSpcCabData        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 25}
	oidSHA1              = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

// Name/value attribute flags (CRYPTCAT_ATTR_*).
const (
	AttrNameASCII     = 0x00000001
	AttrDataASCII     = 0x00010000
	AttrDataBase64    = 0x00020000
	AttrAuthenticated = 0x10000000
)

// Catalog is a parsed security catalog.
type Catalog struct {
	ListID     []byte    // the list identifier (makecat: a GUID)
	ThisUpdate time.Time // when the list was made
	Members    []Member

	signed *pkcs7.ContentInfoSignedData
}

// Member is one entry of the trust list.
type Member struct {
	// Tag is the subject identifier. For a flat file it is the file's hash:
	// 20 bytes for SHA-1, 32 for SHA-256.
	Tag []byte
	// Hash and Digest come from the member's SpcIndirectData attribute, when
	// it has one; for flat files Digest equals Tag.
	Hash   crypto.Hash
	Digest []byte
	// Attributes are the member's name/value pairs, such as File=CPE.nbt.
	Attributes []NameValue
}

// NameValue is a catalog name/value attribute (CAT_NAMEVALUE).
type NameValue struct {
	Name  string
	Flags uint32
	Value []byte // as stored: UTF-16LE text unless the flags say base64 data
}

// Text returns the value as text: UTF-16LE decoded, without the trailing
// NUL, unless the flags mark it as binary data.
func (nv NameValue) Text() string {
	if nv.Flags&AttrDataBase64 != 0 || len(nv.Value)%2 != 0 {
		return string(nv.Value)
	}
	return decodeUTF16LE(nv.Value)
}

// Attribute returns the text of the named attribute (case-insensitive).
func (m *Member) Attribute(name string) (string, bool) {
	for _, nv := range m.Attributes {
		if bytes.EqualFold([]byte(nv.Name), []byte(name)) {
			return nv.Text(), true
		}
	}
	return "", false
}

// The ASN.1 model of the trust list ([MS-CAT]-style, as makecat writes it).
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type certTrustList struct {
	Version          int `asn1:"optional,default:0"`
	SubjectUsage     []asn1.ObjectIdentifier
	ListIdentifier   []byte    `asn1:"optional"`
	SequenceNumber   *big.Int  `asn1:"optional"`
	ThisUpdate       time.Time // UTCTime or GeneralizedTime
	NextUpdate       time.Time `asn1:"optional"`
	SubjectAlgorithm pkix.AlgorithmIdentifier
	TrustedSubjects  []trustedSubject `asn1:"optional"`
	Extensions       asn1.RawValue    `asn1:"optional,explicit,tag:0"`
}

type trustedSubject struct {
	Identifier []byte
	Attributes []attribute `asn1:"set,optional"`
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type rawNameValue struct {
	Name  asn1.RawValue
	Flags int64
	Value []byte
}

type spcIndirectData struct {
	Data          spcAttributeValue
	MessageDigest digestInfo
}

type spcAttributeValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"optional"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Parse decodes a catalog without checking its signature: call Verify.
func Parse(der []byte) (*Catalog, error) {
	if len(der) > MaxSize {
		return nil, formatErr("%d bytes, more than the %d a catalog may have", len(der), MaxSize)
	}
	psd, err := pkcs7.Unmarshal(der)
	if err != nil {
		return nil, formatErr("not PKCS#7 SignedData (%s)", derReason(err))
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(psd.Content.ContentInfo.Raw, &ci); err != nil {
		return nil, formatErr("content is not a ContentInfo (%s)", derReason(err))
	} else if len(rest) != 0 {
		return nil, formatErr("%d stray bytes after the content", len(rest))
	}
	if !ci.ContentType.Equal(OIDCertTrustList) {
		return nil, formatErr("content type %v, want a certificate trust list (%v)", ci.ContentType, OIDCertTrustList)
	}
	var ctl certTrustList
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &ctl); err != nil {
		return nil, formatErr("certificate trust list: %s", derReason(err))
	} else if len(rest) != 0 {
		return nil, formatErr("%d stray bytes after the certificate trust list", len(rest))
	}
	if !hasOID(ctl.SubjectUsage, OIDCatalogList) {
		return nil, formatErr("trust list usage %v is not a catalog list", ctl.SubjectUsage)
	}
	c := &Catalog{ListID: ctl.ListIdentifier, ThisUpdate: ctl.ThisUpdate, signed: psd}
	for i, s := range ctl.TrustedSubjects {
		m, err := parseMember(s)
		if err != nil {
			return nil, formatErr("member %d: %v", i, err)
		}
		c.Members = append(c.Members, m)
	}
	return c, nil
}

func parseMember(s trustedSubject) (Member, error) {
	m := Member{Tag: s.Identifier}
	for _, a := range s.Attributes {
		for _, v := range a.Values {
			switch {
			case a.Type.Equal(OIDNameValue):
				var nv rawNameValue
				if _, err := asn1.Unmarshal(v.FullBytes, &nv); err != nil {
					return m, fmt.Errorf("name/value attribute: %v", err)
				}
				if nv.Name.Tag != asn1.TagBMPString || len(nv.Name.Bytes)%2 != 0 {
					return m, fmt.Errorf("name/value attribute: name is not a BMPString")
				}
				m.Attributes = append(m.Attributes, NameValue{
					Name: decodeUTF16BE(nv.Name.Bytes), Flags: uint32(nv.Flags), Value: nv.Value,
				})
			case a.Type.Equal(OIDSpcIndirectData):
				var ind spcIndirectData
				if _, err := asn1.Unmarshal(v.FullBytes, &ind); err != nil {
					return m, fmt.Errorf("indirect data: %v", err)
				}
				switch alg := ind.MessageDigest.Algorithm.Algorithm; {
				case alg.Equal(oidSHA1) && len(ind.MessageDigest.Digest) == 20:
					m.Hash = crypto.SHA1
				case alg.Equal(oidSHA256) && len(ind.MessageDigest.Digest) == 32:
					m.Hash = crypto.SHA256
				default:
					return m, fmt.Errorf("indirect data: digest algorithm %v with %d bytes", alg, len(ind.MessageDigest.Digest))
				}
				m.Digest = ind.MessageDigest.Digest
			}
		}
	}
	return m, nil
}

// Lookup returns the member that names a file by the given hash: a SHA-1
// (20 bytes) or SHA-256 (32 bytes) of its content.
func (c *Catalog) Lookup(sum []byte) (*Member, bool) {
	for i := range c.Members {
		m := &c.Members[i]
		if bytes.Equal(m.Tag, sum) || m.Digest != nil && bytes.Equal(m.Digest, sum) {
			return m, true
		}
	}
	return nil, false
}

// Verify checks the catalog's signature over its content and the signer's
// certificate chain to roots, for code signing, at the signature's
// timestamp when it has one and at the current time otherwise. It returns
// the signer's certificate.
func (c *Catalog) Verify(roots *x509.CertPool) (*x509.Certificate, error) {
	if len(c.signed.Content.SignerInfos) == 0 {
		return nil, ErrUnsigned
	}
	sig, err := c.signed.Content.Verify(nil, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	ts, err := pkcs9.VerifyOptionalTimestamp(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp: %v", ErrSignature, err)
	}
	certs, err := c.signed.Content.Certificates.Parse()
	if err != nil {
		return nil, fmt.Errorf("%w: embedded certificates: %v", ErrFormat, err)
	}
	if err := ts.VerifyChain(roots, certs, SignerUsage); err != nil {
		at := time.Now()
		if ts.CounterSignature != nil {
			at = ts.CounterSignature.SigningTime
		}
		if why := signerError(append([]*x509.Certificate{sig.Certificate}, certs...), err, at); why != err {
			return nil, fmt.Errorf("%w: %v", ErrUntrusted, why)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUntrusted, sig.Certificate.Subject, err)
	}
	return sig.Certificate, nil
}

func hasOID(list []asn1.ObjectIdentifier, oid asn1.ObjectIdentifier) bool {
	for _, o := range list {
		if o.Equal(oid) {
			return true
		}
	}
	return false
}

func decodeUTF16BE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func decodeUTF16LE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.LittleEndian.Uint16(b[i:]))
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// derReason says briefly why DER did not decode: encoding/asn1's
// structural errors print Go's struct tags, which tell an admin nothing.
func derReason(err error) string {
	var se asn1.StructuralError
	if errors.As(err, &se) {
		return "its DER structure is not the expected one"
	}
	var sy asn1.SyntaxError
	if errors.As(err, &sy) {
		return "malformed DER: " + sy.Msg
	}
	return err.Error()
}
