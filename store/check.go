package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxProblems caps what Check reports; past it the database is clearly
// broken and the rest is noise.
const maxProblems = 50

// Check verifies the whole database in one read transaction: bbolt's own
// page consistency, then every invariant listed in the package doc (each
// index agrees with the follow-ups both ways, the shape of every state, the
// ledger). It returns every problem found, joined, or nil. Tests run it in
// their cleanup; `followupd` may run it on demand.
func (db *DB) Check() error {
	var problems []error
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	err := db.view(func(tx *bolt.Tx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: bbolt panicked: %v", ErrInvalid, r)
			}
		}()
		// Our own walk first: it faults safely on a broken page, where
		// bbolt's checker runs in a goroutine we cannot guard.
		walk(tx)
		for err := range tx.Check() {
			add("bbolt: %w", err)
		}
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				add("bucket %s missing", b)
			}
		}
		if len(problems) > 0 {
			return nil
		}
		checkFollowUps(tx, add)
		checkMessages(tx, add)
		checkIncoming(tx, add)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: check %s: %d problem(s): %w", db.path, len(problems), errors.Join(problems...))
	}
	return nil
}

func checkFollowUps(tx *bolt.Tx, add func(string, ...any)) {
	has := func(b []byte, k []byte) bool { return tx.Bucket(b).Get(k) != nil }
	points := func(b []byte, k []byte, id uint64) bool {
		v := tx.Bucket(b).Get(k)
		return len(v) == 8 && binary.BigEndian.Uint64(v) == id
	}
	ledgers := map[uint64][]LedgerEntry{}
	_ = tx.Bucket(bucketLedger).ForEach(func(k, v []byte) error {
		id, step, _, err := parseLedgerKey(k)
		if err != nil {
			add("ledger: %w", err)
			return nil
		}
		var e LedgerEntry
		if err := json.Unmarshal(v, &e); err != nil {
			add("ledger of follow-up %d step %d: %w", id, step, err)
			return nil
		}
		if e.FollowUp != id || e.Step != step {
			add("ledger key (%d, %d) holds entry of (%d, %d)", id, step, e.FollowUp, e.Step)
		}
		ledgers[id] = append(ledgers[id], e)
		return nil
	})

	var n, pending int
	var maxID uint64
	fus := map[uint64]*FollowUp{}
	oldest, oerr := oldestSentTx(tx)
	if oerr != nil {
		add("%w", oerr)
	}
	_ = tx.Bucket(bucketFU).ForEach(func(k, v []byte) error {
		n++
		if len(k) != 8 {
			add("follow-up key of %d bytes", len(k))
			return nil
		}
		id := binary.BigEndian.Uint64(k)
		maxID = max(maxID, id)
		f, err := decodeFU(id, v)
		if err != nil {
			add("%w", err)
			return nil
		}
		fus[id] = f
		if f.ID != id {
			add("follow-up %d stored under key %d", f.ID, id)
		}
		if oerr == nil && sentNanos(f.SentAt) < oldest {
			add("follow-up %d sent at %s, before the recorded oldest %s", id, f.SentAt, time.Unix(0, oldest))
		}
		if f.MessageID == "" {
			add("follow-up %d has no message id", id)
		} else if !points(bucketFUMsgID, []byte(f.MessageID), id) {
			add("follow-up %d: message id %q not indexed to it", id, f.MessageID)
		}
		if !has(bucketFUState, stateKey(f.State, id)) {
			add("follow-up %d: state %s not indexed", id, f.State)
		}
		if f.State.Pending() {
			pending++
			if !has(bucketFUDue, dueKey(f.Due, id)) {
				add("follow-up %d: %s but due %s not indexed", id, f.State, f.Due)
			}
		}
		if err := checkShape(f); err != nil {
			add("follow-up %d: %w", id, err)
		}
		if !inFlight(f.State) && f.SendID != "" {
			add("follow-up %d: %s with send id %q", id, f.State, f.SendID)
		}
		if f.Eligible != nil && !eligibleHolds(f) {
			add("follow-up %d: %s step %d due %s with the eligibility mark of step %d due %s", id, f.State, f.Step, f.Due, f.Eligible.Step, f.Eligible.Due)
		}
		if len(f.History) == 0 {
			add("follow-up %d has no history", id)
		} else if last := f.History[len(f.History)-1]; last.To != f.State {
			add("follow-up %d: state %s but last history entry goes to %s", id, f.State, last.To)
		} else if first := f.History[0]; first.Event != EvTrack {
			add("follow-up %d: history starts with %s", id, first.Event)
		}
		addrs, domains := recipients(f)
		for _, a := range addrs {
			if !has(bucketFURcpt, addrKey(a, id)) {
				add("follow-up %d: recipient %s not indexed", id, a)
			}
		}
		for _, d := range domains {
			if !has(bucketFUDomain, addrKey(d, id)) {
				add("follow-up %d: domain %s not indexed", id, d)
			}
		}
		own := append(slices.Clone(f.Sent), f.SendID)
		sentSteps := map[int]int{}
		for _, e := range ledgers[id] {
			own = append(own, e.MessageID)
			if e.State == LedgerSent {
				sentSteps[e.Step]++
				if !slices.Contains(f.Sent, e.MessageID) {
					add("follow-up %d: ledger step %d sent as %q, missing from Sent", id, e.Step, e.MessageID)
				}
			}
		}
		for step, c := range sentSteps {
			if c > 1 {
				add("follow-up %d: step %d sent %d times", id, step, c)
			}
		}
		for _, m := range own {
			if m != "" && !points(bucketFUThread, []byte(m), id) {
				add("follow-up %d: own message id %q not in thread index", id, m)
			}
		}
		if want, ok := map[State]LedgerState{StateSending: LedgerIntent, StateDraft: LedgerDrafted, StateUncertain: LedgerUncertain}[f.State]; ok {
			var last *LedgerEntry
			for i := range ledgers[id] {
				if ledgers[id][i].Step == f.Step {
					last = &ledgers[id][i]
				}
			}
			switch {
			case last == nil:
				add("follow-up %d: %s step %d without ledger entry", id, f.State, f.Step)
			case (last.State != want && (want != LedgerIntent || last.State != LedgerSubmitting)) || last.MessageID != f.SendID:
				add("follow-up %d: %s step %d (send id %q) but ledger holds %s %q", id, f.State, f.Step, f.SendID, last.State, last.MessageID)
			}
		}
		return nil
	})
	if seq := tx.Bucket(bucketFU).Sequence(); seq < maxID {
		add("follow-up sequence %d below highest id %d", seq, maxID)
	}
	for id := range ledgers {
		if fus[id] == nil {
			add("ledger entries of missing follow-up %d", id)
		}
	}

	// Reverse direction: every index entry names a follow-up that agrees.
	count := func(b []byte) int { return tx.Bucket(b).Stats().KeyN }
	if c := count(bucketFUState); c != n {
		add("state index has %d entries for %d follow-ups", c, n)
	}
	if c := count(bucketFUDue); c != pending {
		add("due index has %d entries for %d pending follow-ups", c, pending)
	}
	_ = tx.Bucket(bucketFUMsgID).ForEach(func(k, v []byte) error {
		if f := fus[binary.BigEndian.Uint64(v)]; len(v) != 8 || f == nil || f.MessageID != string(k) {
			add("message id index: %q points to a follow-up that does not track it", k)
		}
		return nil
	})
	_ = tx.Bucket(bucketFUThread).ForEach(func(k, v []byte) error {
		if len(v) != 8 || fus[binary.BigEndian.Uint64(v)] == nil {
			add("thread index: %q points to a missing follow-up", k)
		}
		return nil
	})
	for _, ix := range []struct {
		b      []byte
		domain bool
	}{{bucketFURcpt, false}, {bucketFUDomain, true}} {
		_ = tx.Bucket(ix.b).ForEach(func(k, _ []byte) error {
			i := len(k) - 9
			if i < 0 || k[i] != 0 {
				add("%s index: malformed key %q", ix.b, k)
				return nil
			}
			name, id := string(k[:i]), binary.BigEndian.Uint64(k[i+1:])
			f := fus[id]
			if f == nil {
				add("%s index: %s points to missing follow-up %d", ix.b, name, id)
				return nil
			}
			addrs, domains := recipients(f)
			if list := map[bool][]string{false: addrs, true: domains}[ix.domain]; !slices.Contains(list, name) {
				add("%s index: %s points to follow-up %d, which does not have it", ix.b, name, id)
			}
			return nil
		})
	}
}

func checkIncoming(tx *bolt.Tx, add func(string, ...any)) {
	in := tx.Bucket(bucketIn)
	_ = tx.Bucket(bucketInThread).ForEach(func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i < 0 || in.Get(k[i+1:]) == nil {
			add("incoming thread index: %q names no incoming verdict", k)
		}
		return nil
	})
	_ = tx.Bucket(bucketInFrom).ForEach(func(k, _ []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) <= i+1+timeKeyLen || in.Get(k[i+1+timeKeyLen:]) == nil {
			add("incoming sender index: %q names no incoming verdict", k)
		}
		return nil
	})
}

func checkMessages(tx *bolt.Tx, add func(string, ...any)) {
	msgs := tx.Bucket(bucketMsg)
	// Every reference resolves, and every record in msgrec has exactly one.
	refs := map[uint64]string{}
	_ = msgs.ForEach(func(k, v []byte) error {
		if !isMsgRef(v) {
			return nil
		}
		seq := binary.BigEndian.Uint64(v[1:])
		if other, dup := refs[seq]; dup {
			add("messages %q and %q share record %d", other, k, seq)
		}
		refs[seq] = string(k)
		if tx.Bucket(bucketMsgRec).Get(v[1:]) == nil {
			add("message %q: record %d missing", k, seq)
		}
		return nil
	})
	_ = tx.Bucket(bucketMsgRec).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			add("message record key of %d bytes", len(k))
		} else if _, ok := refs[binary.BigEndian.Uint64(k)]; !ok {
			add("message record %d has no Message-ID pointing to it", binary.BigEndian.Uint64(k))
		}
		return nil
	})
	_ = tx.Bucket(bucketMsgLoc).ForEach(func(k, v []byte) error {
		if msgs.Get(v) == nil {
			add("location index points to missing message %q", v)
		}
		return nil
	})
}
