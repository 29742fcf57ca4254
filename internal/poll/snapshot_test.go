package poll_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/poll"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// slowRules is a store whose rules take a while to read, as a dozen
// round trips to PostgreSQL do, and whose next reads can be made to fail.
type slowRules struct {
	store.Store
	reads atomic.Int64
	fail  atomic.Int64 // reads left to fail
}

var errDown = errors.New("the database is down")

func (s *slowRules) Rules() ([]deviceupdate.Rule, error) {
	s.reads.Add(1)
	time.Sleep(20 * time.Millisecond)
	if s.fail.Add(-1) >= 0 {
		return nil, errDown
	}
	return s.Store.Rules()
}

// TestStalePollsShareOneRead: the polls that find the answer's inputs
// stale after a change read them once between them, and all answer as of
// the change; when that read fails, they all fail with it and the next
// poll reads again.
func TestStalePollsShareOneRead(t *testing.T) {
	tests := []struct {
		name      string
		fail      int64
		wantErr   error
		wantOffer string
	}{
		{name: "after an approve", wantOffer: "4.0.7577.4400"},
		{name: "when the store fails", fail: 1, wantErr: errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFixture(t)
			db := &slowRules{Store: f.db}
			svc := &poll.Service{DB: db, Recorder: f.rec, Files: f.files, Now: func() time.Time { return f.now }}
			req := request("CX600", phoneMAC, "", "4.0.7577.4100")
			if _, err := svc.Poll(context.Background(), req, outside); err != nil {
				t.Fatal(err)
			}
			f.change(t, cx600, deviceupdate.RuleApprove)
			db.reads.Store(0)
			db.fail.Store(tt.fail)
			const polls = 50
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, polls)
			offers := make([]string, polls)
			for i := range polls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ans, err := svc.Poll(context.Background(), req, outside)
					if errs[i] = err; err == nil {
						offers[i] = offered(ans)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := db.reads.Load(); n != 1 {
				t.Errorf("%d polls read the rules %d times, want once", polls, n)
			}
			for i := range polls {
				if !errors.Is(errs[i], tt.wantErr) || offers[i] != tt.wantOffer {
					t.Fatalf("poll %d: offered %q, error %v; want %q, %v", i, offers[i], errs[i], tt.wantOffer, tt.wantErr)
				}
			}
			ans, err := svc.Poll(context.Background(), req, outside)
			if err != nil || offered(ans) != "4.0.7577.4400" {
				t.Fatalf("the next poll: %v, %v; want the approved 4.0.7577.4400", ans, err)
			}
		})
	}
}
