package main

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// inventoryWarnEvery spaces the warnings of a full inventory: a flood of
// invented devices must not flood the log too.
const inventoryWarnEvery = time.Minute

// limitInventory caps the inventory at max devices (--max-devices): past
// it, polls of new devices are answered but not recorded. It registers
// the inventory's metrics and warns, at most once a minute, while new
// devices are refused.
func (m *Main) limitInventory(max int, reg prometheus.Registerer) {
	var mu sync.Mutex
	var last time.Time
	refused := 0
	m.db.LimitDevices(max, func(n int) {
		mu.Lock()
		defer mu.Unlock()
		refused += n
		if now := time.Now(); now.Sub(last) >= inventoryWarnEvery {
			m.Logger.Warn("inventory full", zap.Int("max_devices", max), zap.Int("refused", refused),
				zap.String("effect", "polls of new devices are answered but not recorded; recorded devices keep updating"),
				zap.String("fix", "forget devices with `deviceupdate device prune --not-seen 30d`, or raise --max-devices"))
			last, refused = now, 0
		}
	})
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "deviceupdate_inventory_devices",
			Help: "Devices the inventory holds.",
		}, func() float64 { return float64(m.db.DeviceCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "deviceupdate_inventory_max_devices",
			Help: "Devices the inventory holds at most (--max-devices).",
		}, func() float64 { return float64(max) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "deviceupdate_inventory_refused_total",
			Help: "New devices not recorded because the inventory was full (--max-devices); their polls were answered.",
		}, func() float64 { return float64(m.db.RefusedDevices()) }),
	)
}
