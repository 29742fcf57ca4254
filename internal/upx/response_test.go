package upx_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/upx"
)

func offerResponse() *upx.Response {
	return &upx.Response{
		NumOfFiles:      2,
		Version:         "4.0.7577.4366",
		BaseURL:         "http://host/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE",
		ExternalBaseURL: "https://host/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE",
		Files: &upx.Files{File: []upx.File{
			{Name: "CPE.nbt", SignatureFile: "CPE.cat", Size: 31457280, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				ChunkSize: 1 << 20, Chunks: "CPE.nbt.chunks", ChunksSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
			{Name: "CPE.cat", Size: 1234, SHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"},
		}},
		PollIntervalSeconds: 86400,
		PeerSharing:         &upx.PeerSharing{Enabled: true, Port: upx.PeerPort},
	}
}

var responseCases = []struct {
	name string
	r    *upx.Response
}{
	{"offer with files", offerResponse()},
	{"no offer", &upx.Response{PollIntervalSeconds: 3600, PeerSharing: &upx.PeerSharing{Port: upx.PeerPort}}},
	{"zero value", &upx.Response{}},
	{"empty file list", &upx.Response{NumOfFiles: 0, Files: &upx.Files{}}},
	{"negative numbers", &upx.Response{NumOfFiles: -1, PollIntervalSeconds: -2, Files: &upx.Files{File: []upx.File{{Size: -3}}}, PeerSharing: &upx.PeerSharing{Port: -4}}},
	{"XMLName is ignored", &upx.Response{XMLName: xml.Name{Space: "urn:x", Local: "Other"}, PollIntervalSeconds: 1}},
	{"values needing escaping", &upx.Response{
		Version:         `<1.0> & "2" 'x'`,
		BaseURL:         "http://h/a b\tc\nd\re",
		ExternalBaseURL: "]]> &amp; &#34;",
		Files: &upx.Files{File: []upx.File{
			{Name: `a"b'c<d>e&f`, SignatureFile: "tab\there\nnewline\rcr", SHA256: "\x00\x01\x1f\x7f"},
		}},
	}},
	{"characters XML does not allow", &upx.Response{
		Version: "bad \xff utf-8 \xc3 and \xed\xa0\x80 surrogate",
		BaseURL: "\uFFFE \uFFFF \uFFFD \U0001F600 é \u0085 \u2028",
		Files:   &upx.Files{File: []upx.File{{Name: "\x00", SHA256: "\xef\xbf\xbd"}}},
	}},
}

// render returns what the poll handler writes for r: WriteTo's bytes.
func render(t testing.TB, r *upx.Response) []byte {
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v after writing %d bytes", n, err, buf.Len())
	}
	return buf.Bytes()
}

func TestResponseMatchesEncodingXML(t *testing.T) {
	for _, tt := range responseCases {
		t.Run(tt.name, func(t *testing.T) {
			want, err := upx.MarshalStd(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, tt.r); !bytes.Equal(got, want) {
				t.Fatalf("WriteTo:\n got  %q\n want %q", got, want)
			}
			prefix := []byte("prefix")
			if got := tt.r.AppendXML(prefix); !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("AppendXML:\n got  %q\n want prefix + %q", got, want)
			}
		})
	}
}

func TestResponseReadsBack(t *testing.T) {
	r := offerResponse()
	var back upx.Response
	if err := xml.Unmarshal(render(t, r), &back); err != nil {
		t.Fatal(err)
	}
	back.XMLName = xml.Name{}
	if back.Version != r.Version || back.NumOfFiles != r.NumOfFiles || len(back.Files.File) != 2 || back.Files.File[0] != r.Files.File[0] || *back.PeerSharing != *r.PeerSharing {
		t.Fatalf("read back %+v", back)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("gone") }

func TestWriteToError(t *testing.T) {
	if _, err := offerResponse().WriteTo(failingWriter{}); err == nil {
		t.Fatal("no error from a failing writer")
	}
}

// FuzzMarshalResponse holds the rendered response (WriteTo, as the poll
// handler writes it) to encoding/xml's bytes for any values.
func FuzzMarshalResponse(f *testing.F) {
	f.Add(2, "4.0.7577.4366", "http://h/x", "https://h/x", true, "CPE.nbt", "CPE.cat", int64(31457280), "abc", 86400, true, true, 4051)
	f.Add(0, "", "", "", false, "", "", int64(0), "", 0, false, false, 0)
	f.Add(-1, "<&>\"'", "\t\n\r", "\xff\x00", true, "\uFFFE", "]]>", int64(-1), "\xed\xa0\x80", -5, true, false, -1)
	f.Fuzz(func(t *testing.T, n int, version, base, ext string, hasFiles bool, name, sig string, size int64, sha string, poll int, hasPeer, enabled bool, port int) {
		r := &upx.Response{NumOfFiles: n, Version: version, BaseURL: base, ExternalBaseURL: ext, PollIntervalSeconds: poll}
		if hasFiles {
			r.Files = &upx.Files{File: []upx.File{{Name: name, SignatureFile: sig, Size: size, SHA256: sha},
				{Name: sig, Size: size / 2, SHA256: name, ChunkSize: size / 3, Chunks: version, ChunksSHA256: sha}}}
		}
		if hasPeer {
			r.PeerSharing = &upx.PeerSharing{Enabled: enabled, Port: port}
		}
		want, err := upx.MarshalStd(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(t, r); !bytes.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	})
}
