package catalog

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/sassoftware/relic/v7/lib/pkcs7"
)

// Entry is a file to list in a new catalog.
type Entry struct {
	Name   string   // recorded as the member's File attribute
	SHA256 [32]byte // the hash of the file's bytes
}

// Build returns the DER of a certificate trust list that names each entry
// by its SHA-256, as makecat does for flat files: the hash as the member's
// tag, a File name/value attribute and an SpcIndirectData digest.
func Build(entries []Entry, now time.Time) ([]byte, error) {
	listID := make([]byte, 16)
	_, _ = rand.Read(listID)
	ctl := certTrustList{
		SubjectUsage:     []asn1.ObjectIdentifier{OIDCatalogList},
		ListIdentifier:   listID,
		ThisUpdate:       now.UTC().Truncate(time.Second),
		SubjectAlgorithm: pkix.AlgorithmIdentifier{Algorithm: OIDCatalogMember2, Parameters: asn1.NullRawValue},
	}
	for _, e := range entries {
		nv, err := asn1.Marshal(rawNameValue{
			Name:  asn1.RawValue{Tag: asn1.TagBMPString, Bytes: encodeUTF16BE("File")},
			Flags: AttrAuthenticated | AttrDataASCII | AttrNameASCII,
			Value: encodeUTF16LE(e.Name + "\x00"),
		})
		if err != nil {
			return nil, fmt.Errorf("build catalog member %s: %w", e.Name, err)
		}
		ind, err := asn1.Marshal(spcIndirectData{
			Data: spcAttributeValue{Type: OIDSpcCabData},
			MessageDigest: digestInfo{
				Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue},
				Digest:    e.SHA256[:],
			},
		})
		if err != nil {
			return nil, fmt.Errorf("build catalog member %s: %w", e.Name, err)
		}
		ctl.TrustedSubjects = append(ctl.TrustedSubjects, trustedSubject{
			Identifier: e.SHA256[:],
			Attributes: []attribute{
				{Type: OIDNameValue, Values: []asn1.RawValue{{FullBytes: nv}}},
				{Type: OIDSpcIndirectData, Values: []asn1.RawValue{{FullBytes: ind}}},
			},
		})
	}
	der, err := asn1.Marshal(ctl)
	if err != nil {
		return nil, fmt.Errorf("build catalog: %w", err)
	}
	return der, nil
}

// Sign wraps a trust list from Build in a PKCS#7 SignedData signed with
// key, embedding the signer's certificate and chain (leaf first).
func Sign(ctl []byte, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("sign catalog: no signing certificate")
	}
	b := pkcs7.NewBuilder(key, chain, crypto.SHA256)
	if err := b.SetContent(OIDCertTrustList, asn1.RawValue{FullBytes: ctl}); err != nil {
		return nil, fmt.Errorf("sign catalog: %w", err)
	}
	psd, err := b.Sign()
	if err != nil {
		return nil, fmt.Errorf("sign catalog: %w", err)
	}
	der, err := psd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sign catalog: %w", err)
	}
	return der, nil
}

func encodeUTF16BE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func encodeUTF16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// Unsigned wraps a trust list from Build in a PKCS#7 SignedData without
// signers, as makecat writes before signing, so that an outside tool
// (signtool, osslsigncode, an HSM's signer) can sign it.
func Unsigned(ctl []byte) ([]byte, error) {
	type signedData struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      contentInfo
		SignerInfos      asn1.RawValue
	}
	type outer struct {
		ContentType asn1.ObjectIdentifier
		Content     signedData `asn1:"explicit,tag:0"`
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	der, err := asn1.Marshal(outer{
		ContentType: pkcs7.OidSignedData,
		Content: signedData{
			Version:          1,
			DigestAlgorithms: emptySet,
			ContentInfo:      contentInfo{ContentType: OIDCertTrustList, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: ctl}},
			SignerInfos:      emptySet,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build unsigned catalog: %w", err)
	}
	return der, nil
}
