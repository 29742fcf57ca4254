package devlogs

import (
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// FuzzUploadNames: whatever a phone sends as LogType, identity and
// FileName, an accepted upload maps to a path that stays three plain
// components under Logs/Client, which parsePath (the restart path) reads
// back the same, through its staged path too, whose names all fit NAME_MAX;
// a refused one never panics.
func FuzzUploadNames(f *testing.F) {
	f.Add("CELog", "00:04:f2:aa:bb:cc", "", "celog.clg")
	f.Add("Watson", "", "SN-1", "crash.dmp")
	f.Add("celog", "", "x", "../../etc/passwd.txt")
	f.Add("Config", "", "x", "a\x00.xml")
	f.Add("Diaglog", "", "x", "..")
	f.Add("CELog", "", "x", "naïve résumé.txt")
	f.Add("CELog", "", "x", "a%41.txt")
	f.Add("celog", "", strings.Repeat("S", 64), strings.Repeat("n", deviceupdate.MaxLogFileName-4)+".txt")
	ls := deviceupdate.LogSettingsFrom(nil)
	s := &Store{}
	f.Fuzz(func(t *testing.T, logType, mac, serial, name string) {
		l, err := ls.CheckUpload(deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: mac, Serial: serial, LogType: logType, FileName: name})
		if err != nil {
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Fatalf("refusal with code %q: %v", deviceupdate.ErrorCode(err), err)
			}
			return
		}
		p := l.Path()
		parts := strings.Split(p, "/")
		if len(parts) != 3 || strings.ContainsAny(p, "\\\x00") {
			t.Fatalf("accepted upload maps to %q", p)
		}
		for _, part := range parts {
			// "0..Clg" is a name; "..", "." or "" would be a way out.
			if part == "" || part == "." || part == ".." {
				t.Fatalf("accepted upload maps to %q", p)
			}
		}
		back, ok := parsePath(p)
		if !ok || back.Path() != p {
			t.Fatalf("parsePath(%q) = %+v, %v", p, back, ok)
		}
		rel := s.stagedPath(l, time.Unix(0, 1))
		for _, part := range strings.Split(rel, "/") {
			if len(part) > 255 {
				t.Fatalf("staged path of %q has a %d-byte name, past NAME_MAX", p, len(part))
			}
		}
		staged, ok := parseStaged(rel)
		if !ok || staged.Path() != p {
			t.Fatalf("staged path of %q reads back as %+v, %v", p, staged, ok)
		}
	})
}
