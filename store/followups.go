package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

// Transition errors.
var (
	// ErrNoChange, returned by a mutate function, makes Transition commit
	// nothing and return the stored follow-up with ErrNoChange.
	ErrNoChange = errors.New("store: no change")
	// ErrStepSubmitted: EvDue for a step whose ledger already holds an
	// intent that was not proven unsent (DESIGN invariant 1).
	ErrStepSubmitted = errors.New("store: step already submitted")
	// ErrOwnMessage: Track was given one of followupd's own messages
	// (DESIGN invariant 3).
	ErrOwnMessage = errors.New("store: own message cannot be tracked")
)

// TransitionError is an event the state machine does not allow.
type TransitionError struct {
	ID    uint64
	From  State
	Event Event
	To    State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("store: follow-up %d: event %s cannot move %s to %s", e.ID, e.Event, e.From, e.To)
}

// Filter selects follow-ups for List; zero fields match anything.
type Filter struct {
	Account, Rule string
	State         State // 0 (StateNone) = any
}

// Track starts following up a sent message. It is idempotent by
// f.MessageID: when that message is already tracked it returns the stored
// follow-up with created=false and writes nothing. Otherwise it assigns ID,
// applies EvTrack (StateNone -> f.State, normally StateWaiting with Step 1,
// Due and LastSent set by the caller), appends the history entry and
// indexes the follow-up, all in one transaction. f itself is not modified.
func (db *DB) Track(f *FollowUp, at time.Time, reason string) (out *FollowUp, created bool, err error) {
	if f == nil || f.MessageID == "" {
		return nil, false, errors.New("store: track: follow-up without message id")
	}
	if strings.HasPrefix(f.MessageID, message.OwnPrefix) {
		return nil, false, fmt.Errorf("track %q: %w", f.MessageID, ErrOwnMessage)
	}
	if !CanTransition(StateNone, EvTrack, f.State) {
		return nil, false, &TransitionError{From: StateNone, Event: EvTrack, To: f.State}
	}
	if err := checkShape(f); err != nil {
		return nil, false, fmt.Errorf("store: track %q: %w", f.MessageID, err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		var err error
		out, created, err = trackTx(tx, f, at, reason)
		if err == nil && !created {
			return errRollback // already tracked: not even a new txid
		}
		return err
	})
	if err != nil && !errors.Is(err, errRollback) {
		return nil, false, err
	}
	if created {
		db.log.Info("tracking sent message", "account", out.Account, "msgid", out.MessageID, "rule", out.Rule, "step", out.Step, "id", out.ID, "due", out.Due)
	}
	return out, created, nil
}

// trackTx is Track inside a write transaction.
func trackTx(tx *bolt.Tx, f *FollowUp, at time.Time, reason string) (*FollowUp, bool, error) {
	mid := []byte(f.MessageID)
	if v := tx.Bucket(bucketFUMsgID).Get(mid); v != nil {
		out, err := loadFU(tx, binary.BigEndian.Uint64(v))
		return out, false, err
	}
	if v := tx.Bucket(bucketFUThread).Get(mid); v != nil {
		return nil, false, fmt.Errorf("track %q (a reminder of follow-up %d): %w", f.MessageID, binary.BigEndian.Uint64(v), ErrOwnMessage)
	}
	id, err := tx.Bucket(bucketFU).NextSequence()
	if err != nil {
		return nil, false, fmt.Errorf("store: track %q: assign id: %w", f.MessageID, err)
	}
	c := *f
	c.ID = id
	c.History = append(slices.Clone(f.History), HistoryEntry{At: at, Event: EvTrack, From: StateNone, To: c.State, Step: c.Step, Reason: reason})
	if err := lowerOldestSentTx(tx, c.SentAt); err != nil {
		return nil, false, err
	}
	if err := tx.Bucket(bucketFUMsgID).Put(mid, u64(id)); err != nil {
		return nil, false, fmt.Errorf("store: track %q: index: %w", f.MessageID, err)
	}
	if err := updateIndexes(tx, nil, &c); err != nil {
		return nil, false, err
	}
	raw, err := putFU(tx, &c)
	if err != nil {
		return nil, false, err
	}
	out, err := decodeFU(id, raw)
	return out, err == nil, err
}

// Transition moves follow-up id by ev in one transaction. mutate (may be
// nil) sets the new State, Step, Due, SendID, ... on a copy; returning an
// error aborts with nothing written, returning ErrNoChange makes Transition
// return the stored follow-up and ErrNoChange. The move must be in the
// transition table, else *TransitionError. The same transaction appends the
// history entry, updates the indexes and the send ledger (see doc.go), and
// clears SendID when the follow-up leaves Sending/Draft/Uncertain.
func (db *DB) Transition(id uint64, ev Event, at time.Time, reason string, mutate func(f *FollowUp) error) (*FollowUp, error) {
	var out *FollowUp
	err := db.update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketFU).Get(u64(id))
		if raw == nil {
			return fmt.Errorf("follow-up %d: %w", id, ErrNotFound)
		}
		old, err := decodeFU(id, raw)
		if err != nil {
			return err
		}
		f, err := decodeFU(id, raw)
		if err != nil {
			return err
		}
		from := old.State
		if mutate != nil {
			if err := mutate(f); err != nil {
				if errors.Is(err, ErrNoChange) {
					out = old
					return ErrNoChange
				}
				return fmt.Errorf("store: follow-up %d: %s: %w", id, ev, err)
			}
		}
		if f.ID != id || f.MessageID != old.MessageID {
			return fmt.Errorf("store: follow-up %d: %s: mutate changed the identity (id %d, message id %q)", id, ev, f.ID, f.MessageID)
		}
		if !CanTransition(from, ev, f.State) {
			return &TransitionError{ID: id, From: from, Event: ev, To: f.State}
		}
		if err := checkShape(f); err != nil {
			return fmt.Errorf("store: follow-up %d: %s to %s: %w", id, ev, f.State, err)
		}
		step := old.Step // the step the event concerns
		if ev == EvDue {
			step = f.Step
			if err := ledgerIntent(tx, f, at); err != nil {
				return err
			}
		} else if mv, ok := ledgerMove[ev]; ok && inFlight(from) {
			// Only a step in flight has a ledger entry; e.g. EvPermFail
			// from Waiting (the reminder could not be rendered) has none.
			e, key, err := lastLedger(tx, id, step)
			if err != nil {
				return err
			}
			if e == nil || !slices.Contains(mv.from, e.State) {
				got := "no entry"
				if e != nil {
					got = e.State.String()
				}
				return fmt.Errorf("store: follow-up %d: %s for step %d: ledger holds %s", id, ev, step, got)
			}
			e.State = mv.to
			switch ev {
			case EvTempFail, EvDrafted:
				e.Detail = reason
			default:
				e.Done = at
				e.Detail = reason
			}
			if mv.to == LedgerSent && !slices.Contains(f.Sent, e.MessageID) {
				f.Sent = append(f.Sent, e.MessageID)
			}
			if err := putLedger(tx, key, e); err != nil {
				return err
			}
		}
		// Index the in-flight id before it may be cleared below.
		if err := indexThread(tx, id, f.SendID); err != nil {
			return err
		}
		if !inFlight(f.State) {
			f.SendID = ""
		}
		if f.Eligible != nil && !eligibleHolds(f) {
			f.Eligible = nil // a new step, due time or state: judged afresh
		}
		f.History = append(old.History, HistoryEntry{At: at, Event: ev, From: from, To: f.State, Step: step, Reason: reason})
		if err := updateIndexes(tx, old, f); err != nil {
			return err
		}
		raw, err = putFU(tx, f)
		if err != nil {
			return err
		}
		out, err = decodeFU(id, raw)
		return err
	})
	if errors.Is(err, ErrNoChange) {
		return out, ErrNoChange
	}
	if err != nil {
		return nil, err
	}
	db.log.Debug("follow-up transition", "account", out.Account, "msgid", out.MessageID, "rule", out.Rule,
		"step", out.Step, "id", id, "event", ev.String(), "to", out.State.String(), "reason", reason)
	return out, nil
}

// MarkEligible records that the daemon found step (due at due) of
// follow-up id eligible to send at seen and deferred it for an operational
// reason (FollowUp.Eligible): max_overdue then counts from seen. It is not
// a transition: the state does not change and no history entry is written,
// so a step retried every minute through a long outage adds nothing to the
// history. A follow-up no longer waiting with that step and due returns
// ErrNoChange; a seen before the mark's is ignored.
func (db *DB) MarkEligible(id uint64, step int, due, seen time.Time) error {
	err := db.update(func(tx *bolt.Tx) error {
		f, err := loadFU(tx, id)
		if err != nil {
			return err
		}
		if f.State != StateWaiting || f.Step != step || !f.Due.Equal(due) {
			return fmt.Errorf("store: follow-up %d: marking step %d (due %s) eligible in state %s step %d: %w", id, step, due.Format(time.RFC3339), f.State, f.Step, ErrNoChange)
		}
		if eligibleHolds(f) && !seen.After(f.Eligible.Seen) {
			return errRollback
		}
		f.Eligible = &Eligible{Step: step, Due: due, Seen: seen}
		_, err = putFU(tx, f)
		return err
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

func inFlight(s State) bool {
	return s == StateSending || s == StateDraft || s == StateUncertain
}

// checkShape enforces what every stored follow-up must look like in its
// state: a pending one has a due time (else the wheel never fires it), an
// in-flight one has its own Message-ID, and a live one has a step.
func checkShape(f *FollowUp) error {
	if f.State.Pending() && f.Due.IsZero() {
		return fmt.Errorf("%s follow-up has no due time", f.State)
	}
	if inFlight(f.State) && f.SendID == "" {
		return fmt.Errorf("%s follow-up has no send id", f.State)
	}
	if (f.State.Pending() || inFlight(f.State)) && f.Step < 1 {
		return fmt.Errorf("%s follow-up has step %d", f.State, f.Step)
	}
	return nil
}

func decodeFU(id uint64, raw []byte) (*FollowUp, error) {
	var f FollowUp
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("store: decode follow-up %d: %w", id, err)
	}
	return &f, nil
}

func loadFU(tx *bolt.Tx, id uint64) (*FollowUp, error) {
	raw := tx.Bucket(bucketFU).Get(u64(id))
	if raw == nil {
		return nil, fmt.Errorf("follow-up %d: %w", id, ErrNotFound)
	}
	return decodeFU(id, raw)
}

func putFU(tx *bolt.Tx, f *FollowUp) ([]byte, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("store: encode follow-up %d: %w", f.ID, err)
	}
	if err := tx.Bucket(bucketFU).Put(u64(f.ID), raw); err != nil {
		return nil, fmt.Errorf("store: put follow-up %d: %w", f.ID, err)
	}
	return raw, nil
}

// recipients returns the lower-cased addresses of To and Cc and their
// domains, without duplicates.
func recipients(f *FollowUp) (addrs, domains []string) {
	for _, list := range [][]message.Address{f.To, f.Cc} {
		for _, a := range list {
			addr := strings.ToLower(strings.TrimSpace(a.Addr))
			if addr == "" || slices.Contains(addrs, addr) {
				continue
			}
			addrs = append(addrs, addr)
			d := message.Address{Addr: addr}.Domain()
			if d != "" && !slices.Contains(domains, d) {
				domains = append(domains, d)
			}
		}
	}
	return addrs, domains
}

// indexThread maps an own Message-ID to its follow-up. The thread index
// only grows: an id once ours stays ours, so a late answer to it is found.
func indexThread(tx *bolt.Tx, id uint64, msgid string) error {
	if msgid == "" {
		return nil
	}
	b := tx.Bucket(bucketFUThread)
	if v := b.Get([]byte(msgid)); v != nil {
		if other := binary.BigEndian.Uint64(v); other != id {
			return fmt.Errorf("store: follow-up %d: own message id %q already belongs to follow-up %d", id, msgid, other)
		}
		return nil
	}
	if err := b.Put([]byte(msgid), u64(id)); err != nil {
		return fmt.Errorf("store: follow-up %d: index own message id %q: %w", id, msgid, err)
	}
	return nil
}

// updateIndexes moves every secondary index entry of a follow-up from its
// old version (nil when new) to f.
func updateIndexes(tx *bolt.Tx, old, f *FollowUp) error {
	id := f.ID
	wrap := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("store: follow-up %d: %s index: %w", id, what, err)
		}
		return nil
	}
	due, state := tx.Bucket(bucketFUDue), tx.Bucket(bucketFUState)
	if old != nil {
		if old.State.Pending() {
			if err := due.Delete(dueKey(old.Due, id)); err != nil {
				return wrap("due", err)
			}
		}
		if err := state.Delete(stateKey(old.State, id)); err != nil {
			return wrap("state", err)
		}
	}
	if f.State.Pending() {
		if err := due.Put(dueKey(f.Due, id), nil); err != nil {
			return wrap("due", err)
		}
	}
	if err := state.Put(stateKey(f.State, id), nil); err != nil {
		return wrap("state", err)
	}

	newA, newD := recipients(f)
	var oldA, oldD []string
	if old != nil {
		oldA, oldD = recipients(old)
	}
	for _, ix := range []struct {
		name     string
		b        *bolt.Bucket
		old, new []string
	}{{"recipient", tx.Bucket(bucketFURcpt), oldA, newA}, {"domain", tx.Bucket(bucketFUDomain), oldD, newD}} {
		for _, s := range ix.old {
			if !slices.Contains(ix.new, s) {
				if err := ix.b.Delete(addrKey(s, id)); err != nil {
					return wrap(ix.name, err)
				}
			}
		}
		for _, s := range ix.new {
			if err := ix.b.Put(addrKey(s, id), nil); err != nil {
				return wrap(ix.name, err)
			}
		}
	}
	for _, s := range f.Sent {
		if err := indexThread(tx, id, s); err != nil {
			return err
		}
	}
	return indexThread(tx, id, f.SendID)
}

// Get returns follow-up id, or ErrNotFound.
func (db *DB) Get(id uint64) (*FollowUp, error) {
	var out *FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = loadFU(tx, id)
		return err
	})
	return out, err
}

// ByMessageID returns the follow-up that tracks msgid or that sent it as
// one of its reminders (any own id it ever used), or ErrNotFound.
func (db *DB) ByMessageID(msgid string) (*FollowUp, error) {
	var out *FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFUMsgID, bucketFUThread} {
			if v := tx.Bucket(b).Get([]byte(msgid)); v != nil {
				var err error
				out, err = loadFU(tx, binary.BigEndian.Uint64(v))
				return err
			}
		}
		return fmt.Errorf("follow-up of message %q: %w", msgid, ErrNotFound)
	})
	return out, err
}

// Tracked reports which of ids are a tracked message's Message-ID or one of
// our reminders' (the keys ByThread looks up), in one read transaction,
// without loading any follow-up.
func (db *DB) Tracked(ids []string) (map[string]bool, error) {
	out := make(map[string]bool)
	err := db.view(func(tx *bolt.Tx) error {
		msg, thread := tx.Bucket(bucketFUMsgID), tx.Bucket(bucketFUThread)
		for _, id := range ids {
			if id == "" || out[id] {
				continue
			}
			if msg.Get([]byte(id)) != nil || thread.Get([]byte(id)) != nil {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}

// ByThread returns the follow-ups whose tracked message or own reminders
// are among ids (a message's In-Reply-To and References), sorted by ID.
func (db *DB) ByThread(ids []string) ([]*FollowUp, error) {
	var out []*FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		var found []uint64
		for _, id := range ids {
			if id == "" {
				continue
			}
			for _, b := range [][]byte{bucketFUMsgID, bucketFUThread} {
				if v := tx.Bucket(b).Get([]byte(id)); v != nil {
					if n := binary.BigEndian.Uint64(v); !slices.Contains(found, n) {
						found = append(found, n)
					}
				}
			}
		}
		var err error
		out, err = loadAll(tx, found)
		return err
	})
	return out, err
}

func loadAll(tx *bolt.Tx, ids []uint64) ([]*FollowUp, error) {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]*FollowUp, 0, len(ids))
	for _, id := range ids {
		f, err := loadFU(tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func (db *DB) byName(bucket []byte, name string) ([]*FollowUp, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	var out []*FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		prefix := addrPrefix(name)
		var ids []uint64
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) == len(prefix)+8 {
				ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		var err error
		out, err = loadAll(tx, ids)
		return err
	})
	return out, err
}

// ByRecipient returns the follow-ups with addr in To or Cc (case-insensitive).
func (db *DB) ByRecipient(addr string) ([]*FollowUp, error) { return db.byName(bucketFURcpt, addr) }

// ByRecipientDomain returns the follow-ups with a To or Cc address at domain.
func (db *DB) ByRecipientDomain(domain string) ([]*FollowUp, error) {
	return db.byName(bucketFUDomain, strings.TrimPrefix(domain, "@"))
}

// PendingDue calls fn for every waiting or held follow-up in ascending due
// order (ties by id) until fn returns false. The keys are read in one short
// read transaction and fn runs after it ends, so fn may call the store.
func (db *DB) PendingDue(fn func(id uint64, due time.Time) bool) error {
	type item struct {
		due time.Time
		id  uint64
	}
	var items []item
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFUDue)
		items = make([]item, 0, b.Stats().KeyN)
		return b.ForEach(func(k, _ []byte) error {
			due, id, err := parseDueKey(k)
			if err != nil {
				return err
			}
			items = append(items, item{due, id})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if !fn(it.id, it.due) {
			break
		}
	}
	return nil
}

// InState returns the follow-ups in state s, sorted by ID.
func (db *DB) InState(s State) ([]*FollowUp, error) {
	var out []*FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = inState(tx, s)
		return err
	})
	return out, err
}

func inState(tx *bolt.Tx, s State) ([]*FollowUp, error) {
	var ids []uint64
	c := tx.Bucket(bucketFUState).Cursor()
	prefix := []byte{byte(s)}
	for k, _ := c.Seek(prefix); k != nil && k[0] == byte(s); k, _ = c.Next() {
		if len(k) == 9 {
			ids = append(ids, binary.BigEndian.Uint64(k[1:]))
		}
	}
	return loadAll(tx, ids)
}

// List returns the follow-ups matching f, sorted by ID.
func (db *DB) List(f Filter) ([]*FollowUp, error) {
	var out []*FollowUp
	err := db.view(func(tx *bolt.Tx) error {
		var all []*FollowUp
		if f.State != StateNone {
			var err error
			if all, err = inState(tx, f.State); err != nil {
				return err
			}
		} else {
			err := tx.Bucket(bucketFU).ForEach(func(k, v []byte) error {
				fu, err := decodeFU(binary.BigEndian.Uint64(k), v)
				if err != nil {
					return err
				}
				all = append(all, fu)
				return nil
			})
			if err != nil {
				return err
			}
		}
		for _, fu := range all {
			if (f.Account == "" || fu.Account == f.Account) && (f.Rule == "" || fu.Rule == f.Rule) {
				out = append(out, fu)
			}
		}
		return nil
	})
	return out, err
}

// Counts returns how many follow-ups are in each state (absent = 0).
func (db *DB) Counts() (map[State]int, error) {
	out := make(map[State]int)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFUState).ForEach(func(k, _ []byte) error {
			if len(k) == 9 {
				out[State(k[0])]++
			}
			return nil
		})
	})
	return out, err
}

type away struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// SetAway records that addr is away until the given time (an out-of-office
// with a return date). An earlier date than the one stored changes nothing.
func (db *DB) SetAway(addr string, until time.Time, reason string) error {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return errors.New("store: set away: empty address")
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAway)
		if v := b.Get([]byte(addr)); v != nil {
			var old away
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("store: decode away of %s: %w", addr, err)
			}
			if !until.After(old.Until) {
				return errRollback
			}
		}
		v, err := json.Marshal(away{Until: until, Reason: reason})
		if err != nil {
			return fmt.Errorf("store: encode away of %s: %w", addr, err)
		}
		if err := b.Put([]byte(addr), v); err != nil {
			return fmt.Errorf("store: put away of %s: %w", addr, err)
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// AwayUntil returns the latest return date recorded for addr and whether
// one was recorded at all; the caller compares it with its clock.
func (db *DB) AwayUntil(addr string) (time.Time, bool, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	var a away
	var ok bool
	err := db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAway).Get([]byte(addr))
		if v == nil {
			return nil
		}
		ok = true
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("store: decode away of %s: %w", addr, err)
		}
		return nil
	})
	return a.Until, ok, err
}
