package daemon

import (
	"strings"
	"testing"
	"time"
)

// A reload waits for the old senders to finish their step; a shutdown that
// comes meanwhile must still cancel a stuck send after StopGrace instead of
// waiting behind the reload for the SMTP timeout (60s).
func TestShutdownDuringReloadWaitingForStuckSend(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("hello {{.Subject}}", r.account(ivan, ""))
	r.start(Options{StopGrace: time.Second})
	dueHeldStep(t, r) // the SMTP server holds DATA for good

	reloaded := make(chan error, 1)
	go func() { reloaded <- r.d.Reload(r.load()) }()
	// The reload has told the sender to stop and waits for its step.
	deadline := time.Now().Add(5 * time.Second)
	for !isClosed(r.acct(ivan).quit) {
		if time.Now().After(deadline) {
			t.Fatal("reload did not stop the old sender within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-reloaded:
		t.Fatalf("reload returned (%v) while the send was stuck", err)
	case <-time.After(100 * time.Millisecond):
	}

	took := r.stop()
	t.Logf("shutdown during a reload waiting for a stuck send took %s", took)
	if took > 10*time.Second {
		t.Errorf("shutdown took %s, want < 10s", took)
	}
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Error("reload still running 5s after Run returned")
	}
	if !strings.Contains(r.logs.String(), "cancelling it") {
		t.Error("no warning that the in-flight send was cancelled")
	}
}
