package handler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// recordingPackages is a PackageService that reads the whole body and
// answers with a canned result or error.
type recordingPackages struct {
	name, actor string
	read        int64
	err         error
}

func (p *recordingPackages) Import(_ context.Context, src io.Reader, size int64, name, actor string) (*deviceupdate.ImportResult, error) {
	p.name, p.actor = name, actor
	n, err := io.Copy(io.Discard, src)
	p.read = n
	if err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	return &deviceupdate.ImportResult{PackageSHA256: "abc"}, nil
}

func TestImportEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		chunked    bool // no Content-Length: the limit bites while streaming
		err        error
		wantStatus int
		wantBody   string
	}{
		{"accepted", "cabinet", false, nil, 200, `"packageSha256":"abc"`},
		{"refused signature", "cabinet", false, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "pkg.cab: CPE.cat: catalog signer is not trusted"), 403, `"code":"forbidden"`},
		{"conflict", "cabinet", false, deviceupdate.Errorf(deviceupdate.ECONFLICT, "version imported before"), 409, `"code":"conflict"`},
		{"declared too large", strings.Repeat("x", 100), false, nil, 413, `"code":"too_large"`},
		{"streams past the limit", strings.Repeat("x", 100), true, nil, 413, "more than the 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs := &recordingPackages{err: tt.err}
			s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken,
				Packages: pkgs, MaxPackageSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, AdminPrefix+`/packages?name=..\dir\pkg.cab`, strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			s.Secure().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("status %d body %s; want %d containing %s", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 200 {
				var res deviceupdate.ImportResult
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
					t.Fatal(err)
				}
				if pkgs.name != "pkg.cab" || pkgs.actor != deviceupdate.BootstrapAdmin {
					t.Errorf("name %q actor %q: the name must be a base name", pkgs.name, pkgs.actor)
				}
			}
		})
	}
}
