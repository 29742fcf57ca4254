package pool

import (
	"strings"
	"testing"
)

// CheckURL takes PostgreSQL URLs naming a host and a database, and
// refuses anything else in a message that never shows the password.
func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		name, url, want string // want: the redacted URL, or a piece of the error
		ok              bool
	}{
		{"a URL", "postgres://ops:s3cret@db.example:5432/pool", "postgres://ops:xxxxx@db.example:5432/pool", true},
		{"postgresql scheme", "postgresql://ops@db.example/pool?sslmode=require", "postgresql://ops@db.example/pool?sslmode=require", true},
		{"a socket folder", "postgres:///pool?host=/run/postgresql", "postgres:///pool?host=/run/postgresql", true},
		{"another scheme", "mysql://ops:s3cret@db.example/pool", "not a PostgreSQL URL", false},
		{"key=value form", "host=db.example password=s3cret dbname=pool", "not a PostgreSQL URL", false},
		{"no host", "postgres:///pool", "names no host", false},
		{"no database", "postgres://ops:s3cret@db.example/", "names no database", false},
		{"a bad option", "postgres://ops:s3cret@db.example/pool?sslmode=sometimes", "sslmode is invalid", false},
		{"a bad port", "postgres://ops:s3cret@db.example:99999/pool", "postgres://ops:xxxxx@db.example:99999/pool", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckURL(tt.url)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("CheckURL = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckURL error %v; want one with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q shows the password or spans lines", err)
			}
		})
	}
}
