package pgstore

import (
	"strings"
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

// Test devices and settings raced between two nodes of a pool; the
// behaviour of each method on one node is the behaviour table's
// (behaviour_test.go).

// Two admins on two nodes add test devices of one MAC at once: one is
// stored, the other is told which device has it.
func TestAddTestDeviceRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	for round := range 5 {
		mac := "00-04-F2-00-00-0" + string(rune('0'+round))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, node := range nodes {
			wg.Go(func() {
				_, errs[i] = node.AddTestDevice(deviceupdate.TestDevice{Name: "phone " + mac + " " + string(rune('a'+i)), MAC: mac, Scope: "global"})
			})
		}
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case deviceupdate.ErrorCode(err) == deviceupdate.ECONFLICT && strings.Contains(err.Error(), "is already test device"):
				conflicts++
			}
		}
		if ok != 1 || conflicts != 1 {
			t.Fatalf("round %d: %v; want one stored and one told the MAC is taken", round, errs)
		}
	}
}

// Settings changed on two nodes at once both hold: neither change is
// lost.
func TestSetConfigRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, node := range nodes {
		wg.Go(func() {
			for j := range 10 {
				if _, _, err := node.SetConfig("global", map[string]string{"Setting" + string(rune('A'+i)) + string(rune('0'+j)): "1"}); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	global, _, err := nodes[0].ConfigOverrides("global")
	if err != nil || len(global) != 20 {
		t.Errorf("%d settings after 20 set on two nodes (%v): %v", len(global), err, global)
	}
}
