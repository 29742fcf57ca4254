// Package inventory records what phones report: every poll updates its
// device's record and adds a line to the request log. Records are batched
// in memory and written in one transaction per flush (every Interval and
// on Close), never one per poll, so a boot storm costs the store little.
//
// A batch stays in memory until it is written: a write that fails (a full
// disk) puts it back, under the records that came meanwhile, and the next
// flush retries, backing off up to MaxBackoff. What a crash loses is what
// came since the last flush, about one DefaultInterval of polls. While
// writes fail, at most DefaultMaxPending devices wait; the polls of further
// devices are answered but not recorded, and counted.
package inventory

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

const (
	// DefaultInterval is how often records and request-log lines are
	// written: a crash loses about this much of them.
	DefaultInterval = time.Second
	// MaxBackoff bounds the wait between retries of a failing write.
	MaxBackoff = 16 * time.Second
	// DefaultMaxPending is how many devices' records may wait unwritten,
	// about 150 MB at most.
	DefaultMaxPending = 250_000
	// errorLogEvery spaces out the error lines of a fault that lasts.
	errorLogEvery = 10 * time.Second
)

// Recorder batches inventory records and request-log lines.
type Recorder struct {
	put      func([]deviceupdate.Device) error // the store's PutDevices; tests wrap it to act during a write
	log      *audit.RequestLog
	logger   *zap.Logger
	interval time.Duration
	flushMu  sync.Mutex // held while a batch goes from pending to the store
	mu       sync.Mutex // guards pending, writing and maxPending
	pending  map[string]deviceupdate.Device
	writing  map[string]deviceupdate.Device // the batch being written
	max      int                            // of pending and writing together

	rate     pollRate      // polls per second over the last minute
	dropped  atomic.Uint64 // polls not recorded: too many devices waiting
	failures atomic.Uint64 // failed writes of a batch
	logErrs  every         // request-log errors
	capErrs  every         // polls dropped at the cap
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New starts a recorder that flushes every interval.
func New(db *store.DB, log *audit.RequestLog, logger *zap.Logger, interval time.Duration) *Recorder {
	r := &Recorder{
		put: db.PutDevices, log: log, logger: logger, interval: interval, max: DefaultMaxPending,
		pending: map[string]deviceupdate.Device{},
		logErrs: every{period: errorLogEvery}, capErrs: every{period: errorLogEvery},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// Record notes one poll, answered with offered (nil for nothing) and a
// poll interval of interval seconds.
func (r *Recorder) Record(req deviceupdate.PollRequest, remote string, at time.Time, offered *deviceupdate.StoredUpdate, interval int) {
	var v deviceupdate.Version
	if offered != nil {
		v = offered.Version
	}
	d := deviceupdate.DeviceFromPoll(req, remote, at, v)
	d.PollInterval = interval
	r.rate.add(at)
	r.add(d)
	if err := r.log.Write(at, remote, req, offered); err != nil {
		r.logRequestLogError(err)
	}
}

// RecordUpload counts one device log upload in the device's record.
func (r *Recorder) RecordUpload(l deviceupdate.DeviceLog, u deviceupdate.LogUpload, at time.Time) {
	r.add(deviceupdate.DeviceFromUpload(l, u, at))
}

func (r *Recorder) add(d deviceupdate.Device) {
	r.mu.Lock()
	old, ok := r.pending[d.ID]
	if !ok && len(r.pending)+len(r.writing) >= r.max {
		if _, ok = r.writing[d.ID]; !ok {
			waiting, limit := len(r.pending)+len(r.writing), r.max
			r.mu.Unlock()
			r.dropped.Add(1)
			if ok, held := r.capErrs.allow(time.Now()); ok {
				r.logger.Error("inventory records cannot be written and too many wait: polls of further devices are answered but not recorded",
					zap.Int("waiting", waiting), zap.Int("max", limit), zap.Int("dropped_since_last_line", held+1))
			}
			return
		}
	}
	r.pending[d.ID] = old.Merge(d)
	r.mu.Unlock()
}

// run flushes every interval; while writes fail, it waits twice as long
// after each failure, up to MaxBackoff.
func (r *Recorder) run() {
	defer close(r.done)
	wait := r.interval
	t := time.NewTimer(wait)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.log.Flush(); err != nil {
			r.logRequestLogError(err)
		}
		if err := r.Flush(); err != nil {
			failed++
			wait = min(2*wait, max(MaxBackoff, r.interval))
			r.logger.Error("write inventory; the records wait in memory and the write is retried",
				zap.Int("waiting", r.Pending()), zap.Duration("retry_in", wait), zap.Int("failures", failed), zap.Error(err))
		} else {
			if failed > 0 {
				r.logger.Info("inventory written again", zap.Int("failures", failed))
			}
			failed, wait = 0, r.interval
		}
		t.Reset(wait)
	}
}

func (r *Recorder) logRequestLogError(err error) {
	if ok, held := r.logErrs.allow(time.Now()); ok {
		r.logger.Error("write request log", zap.Uint64("dropped_lines_total", r.log.Dropped()), zap.Int("errors_since_last_line", held+1), zap.Error(err))
	}
}

// Flush writes the pending records in one transaction. When the write
// fails they stay pending, under any newer record of the same device, for
// the next flush. It leaves the request log alone (it is written every
// interval and on Close), so reading the inventory never depends on it.
func (r *Recorder) Flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flush()
}

// Forget runs forget, which deletes devices from the store, once every
// record pending is written and with no flush until it returns: a batch
// taken before cannot write back a device that forget deletes, while a
// poll that comes during or after it records the device anew. When the
// pending records cannot be written, forget does not run.
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
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := r.pending
	r.pending, r.writing = map[string]deviceupdate.Device{}, batch
	r.mu.Unlock()
	list := make([]deviceupdate.Device, 0, len(batch))
	for _, d := range batch {
		list = append(list, d)
	}
	err := r.put(list)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writing = nil
	if err != nil {
		r.failures.Add(1)
		for id, d := range batch {
			if newer, ok := r.pending[id]; ok {
				d = d.Merge(newer)
			}
			r.pending[id] = d
		}
	}
	return err
}

// PollsLastMinute returns how many polls were recorded in the minute
// before now, for the console's dashboard.
func (r *Recorder) PollsLastMinute() int { return r.rate.sum(time.Now()) }

// pollRate counts polls per second in a ring of the last minute's
// seconds: two atomic operations per poll, no lock. A second's slot is
// cleared by the first poll of a new second; a poll that races with the
// clearing may be lost from the count, which is a rate shown to people,
// not a total.
type pollRate struct {
	slots [60]struct {
		sec atomic.Int64
		n   atomic.Int64
	}
}

func (p *pollRate) add(at time.Time) {
	sec := at.Unix()
	s := &p.slots[uint64(sec)%60]
	if old := s.sec.Load(); old != sec && s.sec.CompareAndSwap(old, sec) {
		s.n.Store(0)
	}
	s.n.Add(1)
}

// sum counts the polls of the 60 seconds up to now.
func (p *pollRate) sum(now time.Time) int {
	n, end := int64(0), now.Unix()
	for i := range p.slots {
		s := &p.slots[i]
		if sec := s.sec.Load(); sec > end-60 && sec <= end {
			n += s.n.Load()
		}
	}
	return int(n)
}

// Pending returns how many devices' records wait to be written.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) + len(r.writing)
}

// Collectors returns the recorder's metrics, for a Prometheus registry.
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "deviceupdate_inventory_pending_records",
			Help: "Devices whose inventory record waits in memory to be written (written every second; they pile up while writes fail).",
		}, func() float64 { return float64(r.Pending()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "deviceupdate_inventory_write_failures_total",
			Help: "Inventory writes that failed (a full disk); their records were kept and retried.",
		}, func() float64 { return float64(r.failures.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "deviceupdate_inventory_pending_dropped_total",
			Help: "Polls answered but not recorded in the inventory because too many unwritten records waited.",
		}, func() float64 { return float64(r.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "deviceupdate_request_log_dropped_lines_total",
			Help: "RequestHandlerAuditLog lines lost because their write failed (a full disk).",
		}, func() float64 { return float64(r.log.Dropped()) }),
	}
}

// Close stops the timer and writes what is pending.
func (r *Recorder) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	err := r.Flush()
	if err != nil {
		r.logger.Error("inventory records lost at stop: they could not be written", zap.Int("records", r.Pending()), zap.Error(err))
	}
	if cerr := r.log.Close(); cerr != nil {
		r.logger.Error("request log lines lost at stop", zap.Error(cerr))
		if err == nil {
			err = cerr
		}
	}
	return err
}

// every lets one event through per period and counts those it holds back,
// so that a fault that lasts logs a line now and then, not one per poll.
type every struct {
	period time.Duration
	mu     sync.Mutex
	next   time.Time
	held   int
}

// allow reports whether an event at now may be logged, and how many were
// held back since the last one that was.
func (e *every) allow(now time.Time) (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.next) {
		e.held++
		return false, 0
	}
	held := e.held
	e.next, e.held = now.Add(e.period), 0
	return true, held
}
