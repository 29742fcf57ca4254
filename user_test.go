package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestValidateUserName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "alice", true},
		{"email-like", "alice.smith@contoso.com", true},
		{"digits and marks", "phone-01_lab", true},
		{"longest", strings.Repeat("a", 64), true},
		{"too long", strings.Repeat("a", 65), false},
		{"empty", "", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"leading dot", ".alice", false},
		{"leading dash", "-alice", false},
		{"colon", "alice:x", false},
		{"space", "alice smith", false},
		{"slash", "a/b", false},
		{"non-ASCII", "alicé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := deviceupdate.ValidateUserName(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateUserName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("code = %s, want invalid", deviceupdate.ErrorCode(err))
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name     string
		user, pw string
		wantErr  string // "" for accepted
	}{
		{"twelve characters", "alice", "correcthorse", ""},
		{"spaces and symbols", "alice", "correct horse battery $taple!", ""},
		{"twelve runes, more bytes", "alice", "ééééééééééé1", ""},
		{"longest", "alice", strings.Repeat("x", 256), ""},
		{"eleven characters", "alice", "correcthors", "too short (11 characters)"},
		{"empty", "alice", "", "too short (0 characters)"},
		{"too long", "alice", strings.Repeat("x", 257), "too long (257 characters)"},
		{"line break", "alice", "correcthorse\nbattery", "control character"},
		{"tab", "alice", "correct\thorsebattery", "control character"},
		{"invalid UTF-8", "alice", "correcthorse\xff", "not valid UTF-8"},
		{"the user name", "alice.smith@contoso", "ALICE.SMITH@contoso", "must not be the user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := deviceupdate.ValidatePassword(tt.user, tt.pw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidatePassword = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Fatalf("ValidatePassword = %v, want an invalid error containing %q", err, tt.wantErr)
			}
			if tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("the message repeats the password: %v", err)
			}
		})
	}
}
