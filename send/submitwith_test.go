package send

import (
	"context"
	"errors"
	"testing"

	"followupd/config"
	"followupd/internal/smtptest"
)

// The hook runs once, before the server has the message; failing it
// delivers nothing and is not permanent.
func TestSubmitWithHook(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"ivan": "pw"}})
	sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), "pw")
	r, raw := built(t)

	calls := 0
	err := sub.SubmitWith(context.Background(), r, raw, func() error {
		calls++
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("server already holds %d messages when the hook runs", n)
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("SubmitWith: err=%v, hook called %d times", err, calls)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}

	boom := errors.New("ledger unavailable")
	err = sub.SubmitWith(context.Background(), r, raw, func() error { return boom })
	e := asError(t, err)
	if e.Permanent || e.MaybeSent || !errors.Is(err, boom) {
		t.Errorf("hook failure gave %+v", e)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages after an aborted submission, want still 1", n)
	}
}
