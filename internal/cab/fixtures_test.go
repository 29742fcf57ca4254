package cab

import (
	"os"
	"testing"
)

// Third-party cabinets kept in testdata/ (see testdata/README.md).
const (
	lzxFixture    = "testdata/lzx.cab"
	simpleFixture = "testdata/simple.cab"
)

// readFixture returns the contents of a file in testdata/.
func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
