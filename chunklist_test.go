package deviceupdate_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

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
