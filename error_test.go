package deviceupdate_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestErrorCodeAndMessage(t *testing.T) {
	secret := errors.New("open /var/lib/secret: permission denied")
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"nil", nil, "", ""},
		{"application error", deviceupdate.Errorf(deviceupdate.ENOTFOUND, "rule %q not found", "r1"),
			deviceupdate.ENOTFOUND, `rule "r1" not found`},
		{"wrapped application error", fmt.Errorf("approve rule: %w", deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule changed")),
			deviceupdate.ECONFLICT, "rule changed"},
		{"plain error hides detail", secret, deviceupdate.EINTERNAL, "internal error; the server log has the details"},
		{"application error with cause shows only the message",
			&deviceupdate.Error{Code: deviceupdate.EINVALID, Message: "bad cabinet", Err: secret},
			deviceupdate.EINVALID, "bad cabinet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceupdate.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := deviceupdate.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestErrorUnwrapsCause(t *testing.T) {
	err := fmt.Errorf("import: %w", &deviceupdate.Error{Code: deviceupdate.EINVALID, Message: "bad", Err: fs.ErrNotExist})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("errors.Is does not see the cause through *Error")
	}
	if got, want := err.Error(), "import: bad: file does not exist"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
