package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Incoming is the verdict on one incoming message, kept so that an answer
// synced before the offer it answers still counts when the offer is
// tracked: the Inbox and Sent folders (and the team's mailboxes) sync
// concurrently, so "reply first, offer second" happens on every first start.
type Incoming struct {
	MessageID string    `json:"message_id"`
	Account   string    `json:"account"`
	Kind      string    `json:"kind"` // classify.Kind: reply, autoreply, bounce, other
	From      string    `json:"from"` // lower-case address
	Date      time.Time `json:"date"`
	ThreadIDs []string  `json:"thread_ids,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Return    time.Time `json:"return,omitempty"` // auto-reply return date
	Failed    []string  `json:"failed,omitempty"` // bounce: failed recipients
	Detail    string    `json:"detail,omitempty"` // bounce diagnostic
}

// PutIncoming records a verdict and indexes it by every id it cites and by
// its sender. Recording the same message again replaces nothing.
func (db *DB) PutIncoming(in Incoming) error {
	return db.PutIncomings([]Incoming{in})
}

// PutIncomings records many verdicts in one transaction (one fsync: a
// first sync of a large INBOX writes one per fetched batch, not one per
// message), as PutIncoming each.
func (db *DB) PutIncomings(ins []Incoming) error {
	for i := range ins {
		if ins[i].MessageID == "" {
			return fmt.Errorf("store: incoming message without id")
		}
	}
	if len(ins) == 0 {
		return nil
	}
	err := db.update(func(tx *bolt.Tx) error {
		wrote := false
		for _, in := range ins {
			err := putIncomingTx(tx, in)
			if errors.Is(err, errRollback) {
				continue
			}
			if err != nil {
				return err
			}
			wrote = true
		}
		if !wrote {
			return errRollback // all already recorded: write nothing
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// putIncomingTx writes one verdict and its indexes; errRollback when the
// message is already recorded.
func putIncomingTx(tx *bolt.Tx, in Incoming) error {
	in.From = strings.ToLower(in.From)
	b := tx.Bucket(bucketIn)
	if b.Get([]byte(in.MessageID)) != nil {
		return errRollback // already recorded: write nothing
	}
	v, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("store: encode incoming %q: %w", in.MessageID, err)
	}
	if err := b.Put([]byte(in.MessageID), v); err != nil {
		return fmt.Errorf("store: put incoming %q: %w", in.MessageID, err)
	}
	for _, id := range in.ThreadIDs {
		if id == "" {
			continue
		}
		if err := tx.Bucket(bucketInThread).Put(nameKey(id, in.MessageID), nil); err != nil {
			return fmt.Errorf("store: index incoming %q by %q: %w", in.MessageID, id, err)
		}
	}
	// The sender index also holds a bounce's failed addresses: a bounce
	// that quotes no Message-ID is found by the address it reports.
	parties := []string{in.From}
	for _, f := range in.Failed {
		if f = strings.ToLower(f); f != in.From {
			parties = append(parties, f)
		}
	}
	for _, p := range parties {
		if p == "" {
			continue
		}
		k := addrPrefix(p)
		tk := make([]byte, timeKeyLen)
		putTime(tk, in.Date)
		k = append(append(k, tk...), in.MessageID...)
		if err := tx.Bucket(bucketInFrom).Put(k, nil); err != nil {
			return fmt.Errorf("store: index incoming %q by sender: %w", in.MessageID, err)
		}
	}
	return nil
}

// IncomingByThread returns the verdicts on messages citing any of ids.
func (db *DB) IncomingByThread(ids []string) ([]Incoming, error) {
	var out []Incoming
	err := db.view(func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		c := tx.Bucket(bucketInThread).Cursor()
		for _, id := range ids {
			prefix := addrPrefix(id)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				mid := string(k[len(prefix):])
				if seen[mid] {
					continue
				}
				seen[mid] = true
				in, err := getIncoming(tx, mid)
				if err != nil {
					return err
				}
				if in != nil {
					out = append(out, *in)
				}
			}
		}
		return nil
	})
	return out, err
}

// IncomingFrom returns the verdicts on messages from addr, and on bounces
// reporting addr as failed, dated at or after since.
func (db *DB) IncomingFrom(addr string, since time.Time) ([]Incoming, error) {
	var out []Incoming
	err := db.view(func(tx *bolt.Tx) error {
		prefix := addrPrefix(strings.ToLower(addr))
		start := make([]byte, len(prefix)+timeKeyLen)
		copy(start, prefix)
		putTime(start[len(prefix):], since)
		c := tx.Bucket(bucketInFrom).Cursor()
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) <= len(prefix)+timeKeyLen {
				continue
			}
			in, err := getIncoming(tx, string(k[len(prefix)+timeKeyLen:]))
			if err != nil {
				return err
			}
			if in != nil {
				out = append(out, *in)
			}
		}
		return nil
	})
	return out, err
}

// IncomingFromDomain is IncomingFrom for every address at domain (a
// colleague of a recipient answering for them). The sender index is keyed
// by address, so this scans it: it runs once per newly tracked message.
func (db *DB) IncomingFromDomain(domain string, since time.Time) ([]Incoming, error) {
	suffix := []byte("@" + strings.ToLower(domain))
	var out []Incoming
	err := db.view(func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		return tx.Bucket(bucketInFrom).ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || !bytes.HasSuffix(k[:i], suffix) || len(k) <= i+1+timeKeyLen {
				return nil
			}
			if getTime(k[i+1 : i+1+timeKeyLen]).Before(since) {
				return nil
			}
			id := string(k[i+1+timeKeyLen:])
			if seen[id] {
				return nil
			}
			seen[id] = true
			in, err := getIncoming(tx, id)
			if err != nil {
				return err
			}
			if in != nil {
				out = append(out, *in)
			}
			return nil
		})
	})
	return out, err
}

func getIncoming(tx *bolt.Tx, id string) (*Incoming, error) {
	v := tx.Bucket(bucketIn).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var in Incoming
	if err := json.Unmarshal(v, &in); err != nil {
		return nil, fmt.Errorf("store: incoming %q: %w", id, err)
	}
	return &in, nil
}

// nameKey is name|0|suffix.
func nameKey(name, suffix string) []byte {
	return append(addrPrefix(name), suffix...)
}
