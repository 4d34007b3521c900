package daemon

import (
	"testing"
	"time"

	"followupd/config"
)

// The horizon follows the live configuration: after a reload with a longer
// lookback, the watcher (which keeps the Daemon it was made with) takes
// less for history at once.
func TestHistoryBeforeFollowsReload(t *testing.T) {
	const seller = "ivan@seller.test"
	r, cfg, d := idleDaemon(t, seller, false)
	before := d.historyBefore()
	if want := r.clk.Now().Add(-lookbackOf(cfg) - historyMargin); !before.Equal(want) {
		t.Fatalf("horizon %v, want %v", before, want)
	}
	longer := *cfg
	longer.Lookback = config.Delay{Duration: 60 * 24 * time.Hour}
	d.live.mu.Lock()
	d.live.cfg = &longer
	d.live.mu.Unlock()
	if after := d.historyBefore(); !after.Equal(r.clk.Now().Add(-60*24*time.Hour - historyMargin)) {
		t.Errorf("after a reload to 60 days: horizon %v (was %v)", after, before)
	}
}
