package cab

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand"
	"testing"
)

func TestMSZIPWriterDistCode(t *testing.T) {
	for d := 1; d <= 32768; d++ {
		c := distCode(d)
		lo := int(distBase[c])
		hi := lo + (1 << distExtra[c]) - 1
		if d < lo || d > hi {
			t.Fatalf("distCode(%d) = %d covering %d..%d", d, c, lo, hi)
		}
	}
	for l := 3; l <= 258; l++ {
		c := lengthCode[l]
		lo := int(lengthBase[c])
		hi := lo + (1 << lengthExtra[c]) - 1
		if c == 28 {
			hi = 258
		}
		if l < lo || l > hi {
			t.Fatalf("lengthCode(%d) = %d covering %d..%d", l, c, lo, hi)
		}
	}
}

func TestMSZIPWriterRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	random := make([]byte, 200000)
	r.Read(random)
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. "), 5000)
	mixed := make([]byte, 300000)
	for i := range mixed {
		mixed[i] = byte(r.Intn(8)) + 'a'
	}
	for name, data := range map[string][]byte{"random": random, "text": text, "mixed": mixed, "zeros": make([]byte, 100000), "tiny": []byte("ab")} {
		t.Run(name, func(t *testing.T) {
			e := newMSZIPEncoder()
			var dict []byte
			var total int
			for pos := 0; pos < len(data); pos += 32768 {
				frame := data[pos:min(pos+32768, len(data))]
				blk := e.encode(frame)
				if string(blk[:2]) != "CK" || len(blk) > 32768+7 {
					t.Fatalf("block at %d: bad framing or %d bytes", pos, len(blk))
				}
				total += len(blk)
				got, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(blk[2:]), dict))
				if err != nil || !bytes.Equal(got, frame) {
					t.Fatalf("block at %d does not inflate to its frame: %v", pos, err)
				}
				dict = data[max(0, pos+len(frame)-32768) : pos+len(frame)]
			}
			t.Logf("%s: %d -> %d bytes (%.1f%%)", name, len(data), total, 100*float64(total)/float64(len(data)))
		})
	}
}
