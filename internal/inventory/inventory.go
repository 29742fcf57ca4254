// Package inventory records what phones report: every poll updates its
// device's record and adds a line to the request log. Records are batched
// in memory and written in one transaction per flush (every Interval and
// on Close), never one per poll, so a boot storm costs the store little.
package inventory

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// DefaultInterval is how often records are flushed.
const DefaultInterval = 2 * time.Second

// Recorder batches inventory records and request-log lines.
type Recorder struct {
	db       *store.DB
	log      *audit.RequestLog
	logger   *zap.Logger
	flushMu  sync.Mutex // held while a batch goes from pending to the store
	mu       sync.Mutex // guards pending
	pending  map[string]deviceupdate.Device
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New starts a recorder that flushes every interval.
func New(db *store.DB, log *audit.RequestLog, logger *zap.Logger, interval time.Duration) *Recorder {
	r := &Recorder{db: db, log: log, logger: logger, pending: map[string]deviceupdate.Device{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run(interval)
	return r
}

// Record notes one poll.
func (r *Recorder) Record(req deviceupdate.PollRequest, remote string, at time.Time, offered *deviceupdate.StoredUpdate) {
	var v deviceupdate.Version
	if offered != nil {
		v = offered.Version
	}
	d := deviceupdate.DeviceFromPoll(req, remote, at, v)
	r.add(d)
	if err := r.log.Write(at, remote, req, offered); err != nil {
		r.logger.Error("write request log", zap.Error(err))
	}
}

// RecordUpload counts one device log upload in the device's record.
func (r *Recorder) RecordUpload(l deviceupdate.DeviceLog, u deviceupdate.LogUpload, at time.Time) {
	r.add(deviceupdate.DeviceFromUpload(l, u, at))
}

func (r *Recorder) add(d deviceupdate.Device) {
	r.mu.Lock()
	r.pending[d.ID] = r.pending[d.ID].Merge(d)
	r.mu.Unlock()
}

func (r *Recorder) run(interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.Flush(); err != nil {
				r.logger.Error("flush inventory", zap.Error(err))
			}
		}
	}
}

// Flush writes the pending records in one transaction, and the log.
func (r *Recorder) Flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flush()
}

// Forget runs forget, which deletes devices from the store, once every
// record pending is written and with no flush until it returns: a batch
// taken before cannot write back a device that forget deletes, while a
// poll that comes during or after it records the device anew.
func (r *Recorder) Forget(forget func() error) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if err := r.flush(); err != nil {
		return err
	}
	return forget()
}

func (r *Recorder) flush() error {
	r.mu.Lock()
	batch := make([]deviceupdate.Device, 0, len(r.pending))
	for _, d := range r.pending {
		batch = append(batch, d)
	}
	r.pending = map[string]deviceupdate.Device{}
	r.mu.Unlock()
	err := r.db.PutDevices(batch)
	if lerr := r.log.Flush(); err == nil {
		err = lerr
	}
	return err
}

// Close stops the timer and flushes what is pending.
func (r *Recorder) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	err := r.Flush()
	if cerr := r.log.Close(); err == nil {
		err = cerr
	}
	return err
}
