package handler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// checkedUsers counts the password checks (each a bcrypt computation in
// the store) and, while hold is set, makes them wait as the store does
// for a bcrypt slot: until hold closes or the context ends.
type checkedUsers struct {
	*fakeUsers
	calls atomic.Int32
	hold  chan struct{}
	// remembered holds "name:password" of credentials the store would
	// remember, as its cache of verified ones does.
	remembered sync.Map
}

func (u *checkedUsers) Remembered(name, password string) (deviceupdate.User, bool) {
	if _, ok := u.remembered.Load(name + ":" + password); ok {
		return deviceupdate.User{Name: name}, true
	}
	return deviceupdate.User{}, false
}

func (u *checkedUsers) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	u.calls.Add(1)
	if u.hold != nil {
		select {
		case <-u.hold:
		case <-ctx.Done():
			return deviceupdate.User{}, &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Message: "busy checking credentials; retry later", Err: ctx.Err()}
		}
	}
	return u.fakeUsers.Authenticate(ctx, name, password)
}

// fakeClock is a settable time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newThrottledServer(t *testing.T) (*Server, *checkedUsers, *fakeClock, *prometheus.Registry) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	users := &checkedUsers{fakeUsers: &fakeUsers{passwords: map[string]string{"phone1": testPassword}}}
	reg := prometheus.NewRegistry()
	s, err := New(Config{Logger: zap.NewNop(), Registry: reg, Store: &fakePinger{}, Polls: &recordingPolls{update: &deviceupdate.StoredUpdate{}},
		Users: users, Now: clock.now, HTTPSPort: "443"})
	if err != nil {
		t.Fatal(err)
	}
	return s, users, clock, reg
}

// externalPoll sends an external poll with a Basic password from addr.
func externalPoll(s *Server, addr, password string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/RequestHandlerExt/ucdevice.upx", strings.NewReader(pollXML))
	req.RemoteAddr = addr
	req.Header.Set("Authorization", basic("phone1", password))
	rec := httptest.NewRecorder()
	s.Secure().ServeHTTP(rec, req)
	return rec
}

// TestFailedSignInsAreThrottled: a source that failed its budget of
// sign-ins gets 401 at once, with no password check, for any password;
// other sources (an IPv6 /64 counts as one) sign in as before; the
// budget refills with time.
func TestFailedSignInsAreThrottled(t *testing.T) {
	s, users, clock, reg := newThrottledServer(t)
	const attacker, phone = "198.51.100.7:40000", "203.0.113.9:40000"
	for i := range authFailBurst {
		if rec := externalPoll(s, attacker, fmt.Sprintf("guess %d", i)); rec.Code != 401 {
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	if n := users.calls.Load(); n != authFailBurst {
		t.Fatalf("%d checks for the first %d guesses", n, authFailBurst)
	}
	steps := []struct {
		name      string
		advance   time.Duration
		addr, pw  string
		want      int
		wantCheck bool // a password check was made
	}{
		{"over budget: refused unchecked", 0, attacker, "guess 20", 401, false},
		{"over budget: even a good password", 0, attacker, testPassword, 401, false},
		{"the same host on another port", 0, "198.51.100.7:40001", "guess 21", 401, false},
		{"another source signs in", 0, phone, testPassword, 200, true},
		{"another source may fail", 0, phone, "a wrong one", 401, true},
		{"a budget refills", authFailEvery, attacker, testPassword, 200, true},
		{"a success spends none of it", 0, attacker, "guess 22", 401, true},
		{"a failure does", 0, attacker, "guess 23", 401, false},
		{"IPv6 /64 is one source", 0, "[2001:db8:1:2::5]:40000", "guess", 401, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.add(st.advance)
			before := users.calls.Load()
			rec := externalPoll(s, st.addr, st.pw)
			if rec.Code != st.want || (users.calls.Load() > before) != st.wantCheck {
				t.Fatalf("%d with %d checks, want %d, checked %v", rec.Code, users.calls.Load()-before, st.want, st.wantCheck)
			}
			if rec.Code == 401 && (rec.Header().Get("WWW-Authenticate") != basicChallenge || !strings.Contains(rec.Body.String(), "anonymous access is not supported")) {
				t.Errorf("401 without the SPEC's answer: %v %q", rec.Header(), rec.Body)
			}
		})
	}
	// The /64 spends one budget across its addresses.
	for i := range authFailBurst {
		externalPoll(s, fmt.Sprintf("[2001:db8:1:2::%x]:40000", i+100), "guess")
	}
	before := users.calls.Load()
	if rec := externalPoll(s, "[2001:db8:1:2:ffff::1]:40000", testPassword); rec.Code != 401 || users.calls.Load() != before {
		t.Errorf("another address of a throttled /64: %d, %d checks", rec.Code, users.calls.Load()-before)
	}
	if got := counter(t, reg, "deviceupdate_external_auth_throttled_total", throttleFailures); got != 6 {
		t.Errorf("deviceupdate_external_auth_throttled_total{reason=failures} = %v, want 6", got)
	}
}

// TestRememberedCredentialsPassTheThrottle: a phone behind the same
// address (a NAT) as someone guessing passwords keeps signing in with
// credentials verified lately, at no cost; guesses stay refused unchecked.
func TestRememberedCredentialsPassTheThrottle(t *testing.T) {
	s, users, _, _ := newThrottledServer(t)
	const nat = "198.51.100.7:40000"
	for i := range authFailBurst {
		externalPoll(s, nat, fmt.Sprintf("guess %d", i))
	}
	for _, tc := range []struct {
		name     string
		remember bool
		password string
		want     int
	}{
		{"not remembered: refused unchecked", false, testPassword, 401},
		{"remembered: signed in unchecked", true, testPassword, 200},
		{"a guess: refused unchecked", true, "guess 99", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.remember {
				users.remembered.Store("phone1:"+testPassword, true)
			}
			before := users.calls.Load()
			if rec := externalPoll(s, nat, tc.password); rec.Code != tc.want || users.calls.Load() != before {
				t.Errorf("%d with %d checks, want %d and none", rec.Code, users.calls.Load()-before, tc.want)
			}
		})
	}
}

// counter reads the value of a counter whose one label is value.
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSignInChecksAreBounded: a source has at most authMaxInFlight
// checks running, past which it gets 503 unchecked; a check that waits
// longer than authWait for a bcrypt slot is answered 503, not queued.
func TestSignInChecksAreBounded(t *testing.T) {
	s, users, _, reg := newThrottledServer(t)
	s.authWait = time.Hour
	users.hold = make(chan struct{})
	const addr = "198.51.100.7:40000"
	var wg sync.WaitGroup
	held := make([]int, authMaxInFlight)
	for i := range authMaxInFlight {
		wg.Add(1)
		go func() { defer wg.Done(); held[i] = externalPoll(s, addr, testPassword).Code }()
	}
	for users.calls.Load() < authMaxInFlight {
		time.Sleep(time.Millisecond)
	}
	rec := externalPoll(s, addr, testPassword)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" || users.calls.Load() != authMaxInFlight {
		t.Errorf("a check past the source's limit: %d, Retry-After %q, %d checks", rec.Code, rec.Header().Get("Retry-After"), users.calls.Load())
	}
	close(users.hold)
	wg.Wait()
	for i, code := range held {
		if code != 200 {
			t.Errorf("held check %d: %d", i, code)
		}
	}

	users.hold = make(chan struct{})
	s.authWait = 10 * time.Millisecond
	rec = externalPoll(s, "203.0.113.9:40000", testPassword)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" || !strings.Contains(rec.Body.String(), "busy checking credentials") {
		t.Errorf("a check that found no bcrypt slot: %d %q", rec.Code, rec.Body)
	}
	if got := counter(t, reg, "deviceupdate_external_auth_throttled_total", throttleWait); got != 1 {
		t.Errorf("deviceupdate_external_auth_throttled_total{reason=wait} = %v, want 1", got)
	}
}

// TestThrottleTableIsBounded: the table holds at most authMaxSources;
// past it new sources share one budget, and sources whose budget is
// whole again are forgotten.
func TestThrottleTableIsBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	th := newAuthThrottle(clock.now)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range authMaxSources + authFailBurst {
		src, verdict := th.admit(addr(i))
		if verdict != admitted {
			t.Fatalf("source %d: %v", i, verdict)
		}
		th.done(src, true)
	}
	if n := th.sources.Len(); n != authMaxSources {
		t.Fatalf("%d sources tracked, want %d", n, authMaxSources)
	}
	if _, verdict := th.admit(addr(authMaxSources + authFailBurst)); verdict != overFailures {
		t.Errorf("a new source past the table: %v, want the spent shared budget", verdict)
	}
	clock.add(authFailEvery * authFailBurst)
	if _, verdict := th.admit(addr(0)); verdict != admitted {
		t.Errorf("a source once its budget refilled: %v", verdict)
	}
	if n := th.sources.Len(); n != 1 {
		t.Errorf("after their budgets refilled, %d sources tracked, want 1", n)
	}
}
