package deviceupdate_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestDecide(t *testing.T) {
	v := deviceupdate.MustParseVersion
	rule := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366"), PendingVersion: v("4.0.7577.4400"), RestoreVersion: v("4.0.7577.4100")}
	approvedOnly := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366")}
	pendingOnly := &deviceupdate.Rule{ID: "r", PendingVersion: v("4.0.7577.4400")}
	none := deviceupdate.Version{}
	tests := []struct {
		name       string
		rule       *deviceupdate.Rule
		running    deviceupdate.Version
		testDevice bool
		want       deviceupdate.Version // zero: nothing offered
		wantReason deviceupdate.OfferReason
	}{
		{"old phone gets the approved build", rule, v("4.0.7577.4100"), false, v("4.0.7577.4366"), deviceupdate.OfferApproved},
		{"test device gets the pending build", rule, v("4.0.7577.4100"), true, v("4.0.7577.4400"), deviceupdate.OfferPending},
		{"current phone gets nothing", rule, v("4.0.7577.4366"), false, none, deviceupdate.OfferCurrent},
		{"current test device gets nothing", rule, v("4.0.7577.4400"), true, none, deviceupdate.OfferCurrent},
		{"newer phone is rolled back", rule, v("4.0.7577.9999"), false, v("4.0.7577.4366"), deviceupdate.OfferRollback},
		{"test device running a newer build gets the pending one", rule, v("4.0.7577.9999"), true, v("4.0.7577.4400"), deviceupdate.OfferRollback},
		{"numbers, not strings", approvedOnly, v("4.0.7577.10000"), false, v("4.0.7577.4366"), deviceupdate.OfferRollback},
		{"test device without pending gets approved", approvedOnly, v("4.0.7577.4100"), true, v("4.0.7577.4366"), deviceupdate.OfferApproved},
		{"no approved version: nothing for others", pendingOnly, v("4.0.7577.4100"), false, none, deviceupdate.OfferNoVersion},
		{"no approved version: pending for test devices", pendingOnly, v("4.0.7577.4100"), true, v("4.0.7577.4400"), deviceupdate.OfferPending},
		{"unknown model", nil, v("4.0.7577.4100"), true, none, deviceupdate.OfferNoRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deviceupdate.Decide(deviceupdate.OfferInput{Rule: tt.rule, Device: "00-04-F2-00-00-01", Running: tt.running, TestDevice: tt.testDevice})
			if got.Version != tt.want || got.Reason != tt.wantReason || got.Offered() != !tt.want.IsZero() {
				t.Errorf("Decide = %+v (offered %v); want %s, %q", got, got.Offered(), tt.want, tt.wantReason)
			}
		})
	}
}

// TestOfferFiles: an offer lists the images in their order, each naming
// the catalog as its signature file, then the catalog; never the
// description; chunk lists only when added.
func TestOfferFiles(t *testing.T) {
	u := &deviceupdate.StoredUpdate{
		Images:      []deviceupdate.UpdateFile{{Name: "Boot.nbt", Size: 1, SHA256: "b"}, {Name: "CPE.nbt", Size: 2, SHA256: "c"}},
		Catalog:     deviceupdate.UpdateFile{Name: "CPE.cat", Size: 3, SHA256: "d"},
		Description: deviceupdate.UpdateFile{Name: "CPE.xml", Size: 4, SHA256: "e"},
	}
	got := deviceupdate.OfferFiles(u)
	want := []deviceupdate.OfferedFile{
		{UpdateFile: u.Images[0], SignatureFile: "CPE.cat"},
		{UpdateFile: u.Images[1], SignatureFile: "CPE.cat"},
		{UpdateFile: u.Catalog},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OfferFiles = %+v, want %+v", got, want)
	}
	cl := &deviceupdate.ChunkList{SHA256: "f"}
	if f := got[1].WithChunkList(cl); f.ChunkList != cl || f.ChunkListName != "CPE.nbt.chunks" || got[1].ChunkList != nil {
		t.Errorf("WithChunkList = %+v, and the original %+v", f, got[1])
	}
}

func TestTestDeviceMatches(t *testing.T) {
	global := deviceupdate.TestDevice{Name: "a", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}
	site := deviceupdate.TestDevice{Name: "b", Serial: "SN1", Scope: "site:Redmond"}
	tests := []struct {
		name               string
		d                  deviceupdate.TestDevice
		mac, serial, where string
		want               bool
	}{
		{"global by MAC", global, "00-04-F2-AA-BB-CC", "", "", true},
		{"other MAC", global, "00-04-F2-AA-BB-CD", "", "", false},
		{"site device at its site", site, "", "sn1", "redmond", true},
		{"site device elsewhere", site, "", "SN1", "Paris", false},
		{"site device, site unknown", site, "", "SN1", "", false},
	}
	for _, tt := range tests {
		if got := tt.d.Matches(tt.mac, tt.serial, tt.where); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeviceMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	poll := deviceupdate.Device{ID: "A", Model: "CX600", LastSeen: t0, Polls: 1}
	upload := deviceupdate.Device{ID: "A", LogUploads: 1, LastLogUpload: t0.Add(time.Hour)}
	tests := []struct {
		name         string
		old, delta   deviceupdate.Device
		wantPolls    int64
		wantUploads  int64
		wantModel    string
		wantLastSeen time.Time
	}{
		{"first poll", deviceupdate.Device{}, poll, 1, 0, "CX600", t0},
		{"first upload", deviceupdate.Device{}, upload, 0, 1, "", time.Time{}},
		{"poll after upload keeps the count", upload, poll, 1, 1, "CX600", t0},
		{"upload after poll keeps the identity", poll, upload, 1, 1, "CX600", t0},
		{"second poll adds", poll, poll, 2, 0, "CX600", t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.old.Merge(tt.delta)
			if got.Polls != tt.wantPolls || got.LogUploads != tt.wantUploads || got.Model != tt.wantModel || !got.LastSeen.Equal(tt.wantLastSeen) {
				t.Errorf("got polls %d, uploads %d, model %q, last seen %v", got.Polls, got.LogUploads, got.Model, got.LastSeen)
			}
			if tt.wantUploads > 0 && !got.LastLogUpload.Equal(t0.Add(time.Hour)) {
				t.Errorf("last upload %v", got.LastLogUpload)
			}
		})
	}
}

func TestNewChunkList(t *testing.T) {
	data := make([]byte, 2*deviceupdate.ChunkSize+5)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tests := []struct {
		name       string
		data       []byte
		size       int64
		wantChunks int
		wantErr    bool
	}{
		{"empty", nil, 0, 0, false},
		{"one byte", data[:1], 1, 1, false},
		{"exactly one chunk", data[:deviceupdate.ChunkSize], deviceupdate.ChunkSize, 1, false},
		{"two chunks and a tail", data, int64(len(data)), 3, false},
		{"shorter than said", data[:10], 11, 0, true},
		{"longer than said", data[:10], 9, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := deviceupdate.NewChunkList(bytes.NewReader(tt.data), tt.size)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || len(cl.Hashes) != tt.wantChunks || bytes.Count(cl.Text, []byte("\n")) != tt.wantChunks {
				t.Fatalf("%v, %d hashes", err, len(cl.Hashes))
			}
			for i, h := range cl.Hashes {
				end := min(int64(i+1)*deviceupdate.ChunkSize, tt.size)
				if h != sha256.Sum256(tt.data[int64(i)*deviceupdate.ChunkSize:end]) {
					t.Errorf("chunk %d hash differs", i)
				}
			}
			if sum := sha256.Sum256(cl.Text); hex.EncodeToString(sum[:]) != cl.SHA256 {
				t.Error("SHA256 is not the hash of Text")
			}
		})
	}
}

// TestJitteredInterval pins each phone's interval: a phone keeps the
// spread it had under every earlier release, so a fleet does not bunch
// up after an upgrade. The wants were computed from the first
// implementation (FNV-1a, 32 bits, of the identifier).
func TestJitteredInterval(t *testing.T) {
	const long = "serial_with-64-characters-abcdefghijklmnopqrstuvwxyz0123456789AB"
	tests := []struct {
		name       string
		base       int
		identifier string
		want       int
	}{
		{"no base", 0, "00-04-F2-AA-BB-CC", 0},
		{"below ten seconds is left as it is", 9, "00-04-F2-AA-BB-CC", 9},
		{"ten seconds, empty identifier", 10, "", 10},
		{"ten seconds, MAC", 10, "00-04-F2-AA-BB-CC", 9},
		{"ten seconds, long serial", 10, long, 11},
		{"hour, empty identifier", 3600, "", 3872},
		{"hour, MAC", 3600, "00-04-F2-AA-BB-CC", 3749},
		{"hour, MAC ...01", 3600, "00-04-F2-00-00-01", 3460},
		{"hour, MAC ...02", 3600, "00-04-F2-00-00-02", 3409},
		{"hour, serial", 3600, "SN12345", 3844},
		{"hour, one letter", 3600, "A", 3288},
		{"hour, long serial", 3600, long, 3561},
		{"hour, eight-pair MAC", 3600, "00-04-F2-AA-BB-CC-DD-EE", 3459},
		{"day, empty identifier", 86400, "", 92514},
		{"day, MAC", 86400, "00-04-F2-AA-BB-CC", 93247},
		{"day, MAC ...01", 86400, "00-04-F2-00-00-01", 83071},
		{"day, MAC ...02", 86400, "00-04-F2-00-00-02", 80839},
		{"day, serial", 86400, "SN12345", 94202},
		{"day, one letter", 86400, "A", 86161},
		{"day, long serial", 86400, long, 91470},
		{"day, eight-pair MAC", 86400, "00-04-F2-AA-BB-CC-DD-EE", 92862},
		{"week, MAC", 604800, "00-04-F2-AA-BB-CC", 589650},
		{"week, serial", 604800, "SN12345", 634954},
		{"week, long serial", 604800, long, 590447},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceupdate.JitteredInterval(tt.base, tt.identifier); got != tt.want {
				t.Errorf("JitteredInterval(%d, %q) = %d, want %d", tt.base, tt.identifier, got, tt.want)
			}
		})
	}
}

// BenchmarkJitteredInterval measures the jitter every poll's answer
// computes from the phone's MAC.
func BenchmarkJitteredInterval(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if deviceupdate.JitteredInterval(86400, "00-04-F2-AA-BB-CC") == 0 {
			b.Fatal("no interval")
		}
	}
}
