package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ledgerMove says which ledger states an event may find for its step and
// what it turns the entry into. EvDue (a new entry) is handled apart.
var ledgerMove = map[Event]struct {
	from []LedgerState
	to   LedgerState
}{
	EvSent:      {[]LedgerState{LedgerIntent, LedgerSubmitting}, LedgerSent},
	EvDraftSent: {[]LedgerState{LedgerDrafted}, LedgerSent},
	EvResolve:   {[]LedgerState{LedgerUncertain}, LedgerSent},
	EvPermFail:  {[]LedgerState{LedgerIntent, LedgerSubmitting}, LedgerFailed},
	EvUncertain: {[]LedgerState{LedgerIntent, LedgerSubmitting}, LedgerUncertain},
	EvRetry:     {[]LedgerState{LedgerIntent, LedgerSubmitting, LedgerUncertain}, LedgerRolledBack},
	EvApprove:   {[]LedgerState{LedgerDrafted}, LedgerRolledBack},
	EvDraftGone: {[]LedgerState{LedgerDrafted}, LedgerRolledBack},
	EvDrafted:   {[]LedgerState{LedgerIntent}, LedgerDrafted},
	EvTempFail:  {[]LedgerState{LedgerIntent}, LedgerIntent},
}

// ledgerIntent writes the intent of f.Step before SMTP, refusing a step
// that already has an intent not proven unsent (invariant 1) and a send id
// used before by this follow-up.
func ledgerIntent(tx *bolt.Tx, f *FollowUp, at time.Time) error {
	if f.SendID == "" {
		return fmt.Errorf("store: follow-up %d: due step %d without a send id", f.ID, f.Step)
	}
	if slices.Contains(f.Sent, f.SendID) {
		return fmt.Errorf("store: follow-up %d: due step %d reuses the sent id %q", f.ID, f.Step, f.SendID)
	}
	entries, err := ledgerOf(tx, f.ID)
	if err != nil {
		return err
	}
	var attempt uint32 = 1
	for _, le := range entries {
		if le.MessageID == f.SendID {
			return fmt.Errorf("store: follow-up %d: due step %d reuses the send id %q of step %d", f.ID, f.Step, f.SendID, le.Step)
		}
	}
	last, key, err := lastLedger(tx, f.ID, f.Step)
	if err != nil {
		return err
	}
	if last != nil {
		if last.State != LedgerRolledBack {
			return fmt.Errorf("follow-up %d step %d (ledger: %s, message id %q): %w", f.ID, f.Step, last.State, last.MessageID, ErrStepSubmitted)
		}
		attempt = binary.BigEndian.Uint32(key[12:]) + 1
	}
	e := &LedgerEntry{FollowUp: f.ID, Step: f.Step, MessageID: f.SendID, State: LedgerIntent, Intent: at}
	return putLedger(tx, ledgerKey(f.ID, f.Step, attempt), e)
}

// lastLedger returns the current (last) ledger entry of a step and its key,
// or nil when the step has none.
func lastLedger(tx *bolt.Tx, id uint64, step int) (*LedgerEntry, []byte, error) {
	prefix := ledgerStepPrefix(id, step)
	c := tx.Bucket(bucketLedger).Cursor()
	var lk, lv []byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		lk, lv = k, v
	}
	if lk == nil {
		return nil, nil, nil
	}
	var e LedgerEntry
	if err := json.Unmarshal(lv, &e); err != nil {
		return nil, nil, fmt.Errorf("store: decode ledger of follow-up %d step %d: %w", id, step, err)
	}
	return &e, bytes.Clone(lk), nil
}

func ledgerOf(tx *bolt.Tx, id uint64) ([]LedgerEntry, error) {
	prefix := u64(id)
	var out []LedgerEntry
	c := tx.Bucket(bucketLedger).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e LedgerEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("store: decode ledger of follow-up %d: %w", id, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func putLedger(tx *bolt.Tx, key []byte, e *LedgerEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("store: encode ledger of follow-up %d step %d: %w", e.FollowUp, e.Step, err)
	}
	if err := tx.Bucket(bucketLedger).Put(key, v); err != nil {
		return fmt.Errorf("store: put ledger of follow-up %d step %d: %w", e.FollowUp, e.Step, err)
	}
	return nil
}

// Ledger returns every send attempt of a follow-up, by step then attempt.
func (db *DB) Ledger(id uint64) ([]LedgerEntry, error) {
	var out []LedgerEntry
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = ledgerOf(tx, id)
		return err
	})
	return out, err
}

// MarkSubmitting records, in its own transaction, that the in-flight step
// of follow-up id (own Message-ID sendID) is about to be committed to the
// SMTP server. It is called right before the final "." of DATA; see
// LedgerSubmitting for what it means after a crash.
func (db *DB) MarkSubmitting(id uint64, step int, sendID string, at time.Time) error {
	return db.update(func(tx *bolt.Tx) error {
		last, key, err := lastLedger(tx, id, step)
		if err != nil {
			return err
		}
		if last == nil || last.MessageID != sendID || last.State != LedgerIntent {
			state := "none"
			if last != nil {
				state = last.State.String()
			}
			return fmt.Errorf("store: follow-up %d step %d: marking %q submitting: ledger holds %s", id, step, sendID, state)
		}
		f, err := loadFU(tx, id)
		if err != nil {
			return err
		}
		if f.State != StateSending || f.SendID != sendID {
			return fmt.Errorf("store: follow-up %d step %d: marking %q submitting in state %s: %w", id, step, sendID, f.State, ErrNoChange)
		}
		last.State = LedgerSubmitting
		last.Detail = "submitting since " + at.UTC().Format(time.RFC3339Nano)
		return putLedger(tx, key, last)
	})
}

// LastLedger returns the current ledger entry of a step (nil when none).
func (db *DB) LastLedger(id uint64, step int) (*LedgerEntry, error) {
	var out *LedgerEntry
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, _, err = lastLedger(tx, id, step)
		return err
	})
	return out, err
}
