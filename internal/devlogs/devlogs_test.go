package devlogs_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
)

// settings returns a live settings source over overrides the test may
// change.
type settings struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *settings) set(k, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
}

func (s *settings) get(string) (deviceupdate.LogSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deviceupdate.LogSettingsFrom(deviceupdate.ResolveConfig(s.m, nil, deviceupdate.ScopeGlobal)), nil
}

func mustOpen(t *testing.T, dir string, st *settings, quota int64, now func() time.Time) *devlogs.Store {
	t.Helper()
	s, err := devlogs.Open(devlogs.Options{Dir: dir, Settings: st.get, Quota: quota, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func upload(name, logType string) deviceupdate.LogUpload {
	return deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: "00:04:f2:aa:bb:cc", LogType: logType, FileName: name}
}

// cutReader fails after giving n bytes, as a dropped connection does.
type cutReader struct{ n int }

func (r *cutReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// files lists every file under dir, relative and slash-separated.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestUploads(t *testing.T) {
	body := bytes.Repeat([]byte("log line\n"), 200) // 1800 bytes
	tests := []struct {
		name     string
		u        deviceupdate.LogUpload
		r        func() io.Reader
		size     int64
		wantCode string // "" when stored
		wantPath string
	}{
		{"valid", upload("celog.clg", "celog"), func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), "", "CELog/00-04-F2-AA-BB-CC/celog.clg"},
		{"serial identity, size unknown", deviceupdate.LogUpload{DeviceType: "UCPhone", Serial: "SN-9", LogType: "Watson", FileName: "crash.DMP"},
			func() io.Reader { return bytes.NewReader(body) }, -1, "", "Watson/SN-9/crash.DMP"},
		{"unknown type", upload("a.txt", "Secrets"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"wrong extension", upload("a.exe", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"no extension", upload("README", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"declared too large", upload("a.txt", "CELog"), func() io.Reader { return bytes.NewReader(body) }, 5000, deviceupdate.ETOOLARGE, ""},
		{"streamed too large", upload("a.txt", "CELog"), func() io.Reader { return bytes.NewReader(make([]byte, 4097)) }, -1, deviceupdate.ETOOLARGE, ""},
		{"dot dot", upload("..", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"traversal", upload("../../x.txt", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"backslash", upload(`..\x.txt`, "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"NUL", upload("a\x00.txt", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"hidden", upload(".bashrc.txt", "CELog"), func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"no identity", deviceupdate.LogUpload{DeviceType: "UCPhone", LogType: "CELog", FileName: "a.txt"}, func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"bad MAC", deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: "00-04", LogType: "CELog", FileName: "a.txt"}, func() io.Reader { return bytes.NewReader(body) }, -1, deviceupdate.EINVALID, ""},
		{"cut short", upload("a.txt", "CELog"), func() io.Reader { return &cutReader{n: 100} }, -1, deviceupdate.EINVALID, ""},
		{"shorter than announced", upload("a.txt", "CELog"), func() io.Reader { return bytes.NewReader(body) }, 1900, deviceupdate.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := &settings{m: map[string]string{"MaxLogFileSize": "4096", "MaxLogCacheLimit": "0"}}
			s := mustOpen(t, dir, st, 0, nil)
			l, err := s.Upload(context.Background(), tt.u, tt.r(), tt.size)
			if code := deviceupdate.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("Upload: %v (code %q), want code %q", err, code, tt.wantCode)
			}
			got := files(t, dir)
			if tt.wantCode != "" {
				if len(got) != 0 {
					t.Fatalf("a refused upload left %v", got)
				}
				return
			}
			if l.Path() != tt.wantPath || len(got) != 1 || got[0] != tt.wantPath {
				t.Fatalf("stored as %s; files %v; want %s", l.Path(), got, tt.wantPath)
			}
			data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(tt.wantPath)))
			if !bytes.Equal(data, body) {
				t.Error("the stored log differs from the upload")
			}
		})
	}
}

func TestLiveSettingsAndCache(t *testing.T) {
	dir := t.TempDir()
	st := &settings{m: map[string]string{"MaxLogFileSize": "1024", "MaxLogCacheLimit": "3000"}}
	s := mustOpen(t, dir, st, 0, nil)
	ctx := context.Background()
	big := make([]byte, 2000)
	if _, err := s.Upload(ctx, upload("a.txt", "CELog"), bytes.NewReader(big), -1); deviceupdate.ErrorCode(err) != deviceupdate.ETOOLARGE {
		t.Fatalf("2000 bytes past MaxLogFileSize=1024: %v", err)
	}
	st.set("MaxLogFileSize", "4096") // config set, no restart
	if _, err := s.Upload(ctx, upload("a.txt", "CELog"), bytes.NewReader(big), -1); err != nil {
		t.Fatalf("after raising MaxLogFileSize: %v", err)
	}
	// 2000 bytes cached, under MaxLogCacheLimit: still staged.
	if got := files(t, dir); len(got) != 1 || !strings.HasPrefix(got[0], devlogs.StagingDir+"/") {
		t.Fatalf("files %v, want the upload in the cache", got)
	}
	// A second upload takes the cache past 3000 bytes: it is flushed.
	if _, err := s.Upload(ctx, upload("b.txt", "CELog"), bytes.NewReader(big), -1); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 2 || got[0] != "CELog/00-04-F2-AA-BB-CC/a.txt" {
		t.Fatalf("after the cache filled: %v", got)
	}
	// Listing flushes too.
	if _, err := s.Upload(ctx, upload("c.txt", "CELog"), bytes.NewReader(big[:10]), -1); err != nil {
		t.Fatal(err)
	}
	logs, err := s.Logs(ctx, deviceupdate.LogFilter{Device: "00-04-f2-aa-bb-cc"})
	if err != nil || len(logs.Logs) != 3 {
		t.Fatalf("Logs = %v, %v; want 3", logs, err)
	}
	rc, l, err := s.OpenLog(ctx, "CELog", "00:04:F2:AA:BB:CC", "c.txt")
	if err != nil || l.Size != 10 {
		t.Fatalf("OpenLog: %v %+v", err, l)
	}
	rc.Close()
	for _, p := range [][3]string{{"CELog", "00-04-F2-AA-BB-CC", "../c.txt"}, {"celog", "00-04-F2-AA-BB-CC", "c.txt"}, {"CELog", "x/..", "c.txt"}} {
		if _, _, err := s.OpenLog(ctx, p[0], p[1], p[2]); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
			t.Errorf("OpenLog%v: %v, want ENOTFOUND", p, err)
		}
	}
}

// TestCrashRecovery: a partial upload a crash left is deleted at start; a
// complete one still in the cache is flushed.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	st := &settings{m: map[string]string{"MaxLogCacheLimit": "1000000"}}
	s, err := devlogs.Open(devlogs.Options{Dir: dir, Settings: st.get})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(context.Background(), upload("kept.txt", "CELog"), strings.NewReader("complete"), -1); err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: no Close, and a half-written upload beside.
	if err := os.WriteFile(filepath.Join(dir, devlogs.StagingDir, "upload-123.part"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, devlogs.StagingDir, "garbage.log"), []byte("x"), 0o600)
	_ = os.MkdirAll(filepath.Join(dir, devlogs.StagingDir, "CELog", "not a device"), 0o750)
	// A cache an earlier version wrote names the log's path in hex.
	legacy := "0000000000000000001.1-" + hex.EncodeToString([]byte("Watson/SN-9/old.dmp")) + ".log"
	if err := os.WriteFile(filepath.Join(dir, devlogs.StagingDir, legacy), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir, st, 0, nil)
	if got := files(t, dir); len(got) != 2 || got[0] != "CELog/00-04-F2-AA-BB-CC/kept.txt" || got[1] != "Watson/SN-9/old.dmp" {
		t.Fatalf("after restart: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, devlogs.StagingDir, "CELog", "not a device")); err == nil {
		t.Error("a folder the cache does not make is left in it")
	}
	logs, _ := s2.Logs(context.Background(), deviceupdate.LogFilter{Type: "CELog"})
	if len(logs.Logs) != 1 || logs.Logs[0].Size != int64(len("complete")) {
		t.Fatalf("index after restart: %+v", logs)
	}
}

// TestAgeAndQuota: the cleaner and ClearLogs delete exactly the logs past
// their age; the quota deletes the oldest first.
func TestAgeAndQuota(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	st := &settings{m: map[string]string{"MaxLogCacheLimit": "0", "LogCleanUpInterval": "10"}}
	s := mustOpen(t, dir, st, 0, func() time.Time { return now })
	ctx := context.Background()
	ages := map[string]int{"d1.txt": 1, "d9.txt": 9, "d11.txt": 11, "d20.txt": 20, "d40.txt": 40}
	for name := range ages {
		if _, err := s.Upload(ctx, upload(name, "CELog"), strings.NewReader(name), -1); err != nil {
			t.Fatal(err)
		}
	}
	// Age the files on disk, then re-open so the index reads their times.
	for name, days := range ages {
		at := now.Add(-time.Duration(days)*24*time.Hour - time.Minute)
		if err := os.Chtimes(filepath.Join(dir, "CELog", "00-04-F2-AA-BB-CC", name), at, at); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	s = mustOpen(t, dir, st, 0, func() time.Time { return now })
	res, err := s.CleanUp()
	if err != nil || res.Deleted != 3 {
		t.Fatalf("CleanUp (10 days) = %+v, %v; want 3 deleted", res, err)
	}
	if _, err := s.ClearLogs(ctx, 31, "admin"); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
		t.Errorf("ClearLogs(31): %v", err)
	}
	res, err = s.ClearLogs(ctx, 5, "admin")
	if err != nil || res.Deleted != 1 {
		t.Fatalf("ClearLogs(5) = %+v, %v", res, err)
	}
	if got := files(t, dir); len(got) != 1 || !strings.HasSuffix(got[0], "/d1.txt") {
		t.Fatalf("left %v, want d1.txt alone", got)
	}

	// Quota: 3 logs of 100 bytes with a 250-byte quota keep the newest two.
	qdir := t.TempDir()
	var clockMu sync.Mutex
	clock := now
	q := mustOpen(t, qdir, st, 250, func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		clock = clock.Add(time.Minute)
		return clock
	})
	for _, name := range []string{"old.txt", "mid.txt", "new.txt"} {
		if _, err := q.Upload(ctx, upload(name, "CELog"), bytes.NewReader(make([]byte, 100)), -1); err != nil {
			t.Fatal(err)
		}
	}
	got := files(t, qdir)
	if len(got) != 2 || strings.Contains(strings.Join(got, " "), "old.txt") {
		t.Fatalf("under a 250-byte quota: %v, want mid and new", got)
	}
}

func TestNextCleanUp(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		at   string
		want time.Time
	}{
		{"", now.Add(time.Hour)},
		{"13:00", time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC)},
		{"12:30", time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)},
		{"03:15", time.Date(2026, 11, 22, 3, 15, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := devlogs.NextCleanUp(now, tt.at); !got.Equal(tt.want) {
			t.Errorf("NextCleanUp(%q) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

// TestDiskFull: on a file system that fills mid-upload the upload is
// refused as unavailable and nothing is left. It needs root to mount a
// small tmpfs.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf // CI runs as root: the test must run there
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a small tmpfs")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		skip("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	st := &settings{m: map[string]string{"MaxLogFileSize": "1048576", "MaxLogCacheLimit": "0"}}
	s := mustOpen(t, dir, st, 0, nil)
	_, err := s.Upload(context.Background(), upload("big.dmp", "Watson"), bytes.NewReader(make([]byte, 512<<10)), -1)
	var e *deviceupdate.Error
	if !errors.As(err, &e) || e.Code != deviceupdate.EUNAVAILABLE || !strings.Contains(e.Message, "disk is full") {
		t.Fatalf("upload to a full disk: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	if _, err := s.Upload(context.Background(), upload("small.txt", "CELog"), strings.NewReader("fits"), -1); err != nil {
		t.Fatalf("the next small upload: %v", err)
	}
}

// TestLongNames: the longest names the rules allow (a 128-byte FileName,
// a 64-character LogType and serial number) are stored, listed, opened
// and recovered from the cache after a crash, each with its own content.
func TestLongNames(t *testing.T) {
	longType := strings.Repeat("T", deviceupdate.MaxIdentifierLen)
	name := func(n int, c string) string { return strings.Repeat(c, n-4) + ".txt" }
	tests := []struct {
		name string
		u    deviceupdate.LogUpload
	}{
		{"90-byte name", upload(name(90, "a"), "CELog")},
		{"128-byte name", upload(name(deviceupdate.MaxLogFileName, "b"), "CELog")},
		{"longest path", deviceupdate.LogUpload{DeviceType: "UCPhone", Serial: strings.Repeat("S", 64), LogType: longType,
			FileName: name(deviceupdate.MaxLogFileName, "c")}},
	}
	for _, crash := range []bool{false, true} {
		dir := t.TempDir()
		st := &settings{m: map[string]string{"ValidLogFileTypes": "CELog," + longType, "MaxLogCacheLimit": "1000000"}}
		s, err := devlogs.Open(devlogs.Options{Dir: dir, Settings: st.get})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			if _, err := s.Upload(context.Background(), tt.u, strings.NewReader("content of "+tt.name), -1); err != nil {
				t.Fatalf("crash %v: upload %s: %v", crash, tt.name, err)
			}
		}
		if crash { // no Close: the uploads wait in the cache for the next start
			s = mustOpen(t, dir, st, 0, nil)
		} else {
			t.Cleanup(func() { _ = s.Close() })
		}
		logs, err := s.Logs(context.Background(), deviceupdate.LogFilter{})
		if err != nil || len(logs.Logs) != len(tests) {
			t.Fatalf("crash %v: Logs = %+v, %v", crash, logs, err)
		}
		for _, tt := range tests {
			dev := tt.u.Serial
			if dev == "" {
				dev = "00-04-F2-AA-BB-CC"
			}
			f, got, err := s.OpenLog(context.Background(), tt.u.LogType, dev, tt.u.FileName)
			if err != nil {
				t.Fatalf("crash %v: open %s: %v", crash, tt.name, err)
			}
			data, _ := io.ReadAll(f)
			f.Close()
			if string(data) != "content of "+tt.name || got.Name != tt.u.FileName {
				t.Errorf("crash %v: %s reads %q as %q", crash, tt.name, got.Name, data)
			}
		}
	}
}
