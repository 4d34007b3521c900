package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

// PutMessages stores a batch of message records in one transaction and
// reports, per record, whether its Message-ID was new. A record whose id is
// already stored changes nothing except that this sighting's location
// (account, mailbox, UIDVALIDITY, UID) is indexed and, when the sighting is
// in a Sent folder or in the stored record's own folder, its flags replace
// the stored flags (flag changes matter on Sent messages: \Flagged stops a
// follow-up). Body is never stored. A record without a MessageID aborts the
// whole batch: the caller computes a synthetic id first.
func (db *DB) PutMessages(recs []*message.Record) (fresh []bool, err error) {
	return db.putMessages(recs, nil, nil)
}

// PutMessagesState is PutMessages and PutSyncState of the batch's folder
// in one transaction: the folder's sync position is stored together with
// the records it covers, never ahead of them, at the cost of one fsync
// instead of two (bench/NOTES.md). recs may be empty (a batch whose UIDs
// were all expunged): then only the state is written.
func (db *DB) PutMessagesState(recs []*message.Record, account, mailbox string, st SyncState) (fresh []bool, err error) {
	k, err := folderKey(account, mailbox)
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("store: encode sync state of %s/%s: %w", account, mailbox, err)
	}
	return db.putMessages(recs, k, v)
}

// putMessages stores recs and, when stateKey is set, the folder's encoded
// sync state, in one transaction.
func (db *DB) putMessages(recs []*message.Record, stateKey, state []byte) (fresh []bool, err error) {
	for i, r := range recs {
		if r == nil || r.MessageID == "" {
			return nil, fmt.Errorf("store: put messages: record %d has no message id", i)
		}
	}
	fresh = make([]bool, len(recs))
	err = db.update(func(tx *bolt.Tx) error {
		changed, err := putMessagesTx(tx, recs, fresh)
		if err != nil {
			return err
		}
		if stateKey != nil {
			if sync := tx.Bucket(bucketSync); !bytes.Equal(sync.Get(stateKey), state) {
				if err := sync.Put(stateKey, state); err != nil {
					return fmt.Errorf("store: put sync state of %q: %w", stateKey, err)
				}
				changed = true
			}
		}
		if !changed {
			return errRollback // a pure re-sighting writes nothing at all
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return nil, err
	}
	return fresh, nil
}

// putMessagesTx is PutMessages' work inside tx: it sets fresh[i] for each
// new Message-ID and reports whether it wrote anything.
func putMessagesTx(tx *bolt.Tx, recs []*message.Record, fresh []bool) (changed bool, err error) {
	msgs, locs := tx.Bucket(bucketMsg), tx.Bucket(bucketMsgLoc)
	// Locations first, in the batch's (UID) order; then the records in
	// Message-ID order. Real Message-IDs are random: bbolt inserts each key
	// into the in-memory node of its page, shifting the entries after it,
	// so a batch in random order costs a shift per record (quadratic in a
	// node holding much of the batch; BenchmarkPutMessagesState), in key
	// order it appends.
	for _, r := range recs {
		if r.Account != "" || r.Mailbox != "" || r.UID != 0 {
			id := []byte(r.MessageID)
			k, err := locKey(r.Account, r.Mailbox, r.UIDValidity, r.UID)
			if err != nil {
				return false, fmt.Errorf("index message %q: %w", r.MessageID, err)
			}
			if !bytes.Equal(locs.Get(k), id) {
				if err := locs.Put(k, id); err != nil {
					return false, fmt.Errorf("store: index message %q at %s/%s uid %d: %w", r.MessageID, r.Account, r.Mailbox, r.UID, err)
				}
				changed = true
			}
		}
	}
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	// Stable: of two records with one Message-ID, the first is the new one.
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(recs[a].MessageID, recs[b].MessageID) })
	// New records are encoded one after another into one slab: bbolt keeps
	// each value until the commit, and append never writes over what an
	// earlier value holds (a grown slab leaves them in the old array).
	slab := make([]byte, 0, 512*len(recs))
	for _, i := range order {
		r := recs[i]
		id := []byte(r.MessageID)
		old := msgs.Get(id)
		if old == nil {
			c := *r
			c.Body = ""
			enc, err := encodeRecord(slab, &c)
			if err != nil {
				return false, fmt.Errorf("store: encode message %q: %w", r.MessageID, err)
			}
			v := enc[len(slab):len(enc):len(enc)]
			slab = enc
			if err := putNewRecord(tx, id, v); err != nil {
				return false, fmt.Errorf("store: put message %q: %w", r.MessageID, err)
			}
			fresh[i] = true
			changed = true
			continue
		}
		raw, err := recordBytes(tx, old)
		if err != nil {
			return false, fmt.Errorf("store: message %q: %w", r.MessageID, err)
		}
		var stored message.Record
		if err := decodeRecord(raw, &stored); err != nil {
			return false, fmt.Errorf("store: decode message %q: %w", r.MessageID, err)
		}
		sameFolder := stored.Account == r.Account && stored.Mailbox == r.Mailbox
		if (r.Role == message.RoleSent || sameFolder) && !slices.Equal(stored.Flags, r.Flags) {
			stored.Flags = slices.Clone(r.Flags)
			v, err := encodeRecord(nil, &stored)
			if err != nil {
				return false, fmt.Errorf("store: encode message %q: %w", r.MessageID, err)
			}
			if err := rewriteRecord(tx, id, old, v); err != nil {
				return false, fmt.Errorf("store: update flags of message %q: %w", r.MessageID, err)
			}
			changed = true
		}
	}
	return changed, nil
}

// Message returns the stored record (without Body), or ErrNotFound.
func (db *DB) Message(id string) (*message.Record, error) {
	var r message.Record
	err := db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMsg).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("message %q: %w", id, ErrNotFound)
		}
		v, err := recordBytes(tx, v)
		if err != nil {
			return fmt.Errorf("store: message %q: %w", id, err)
		}
		if err := decodeRecord(v, &r); err != nil {
			return fmt.Errorf("store: decode message %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// KnownMessages returns the stored records (without Body) of those ids the
// store holds, by id, read in one transaction: a fetched batch asks once
// instead of one Message call per record (bench/NOTES.md). Ids it does not
// hold are absent from the map.
func (db *DB) KnownMessages(ids []string) (map[string]*message.Record, error) {
	known := make(map[string]*message.Record)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMsg)
		for _, id := range ids {
			if _, seen := known[id]; seen {
				continue
			}
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			v, err := recordBytes(tx, v)
			if err != nil {
				return fmt.Errorf("store: message %q: %w", id, err)
			}
			var r message.Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("store: decode message %q: %w", id, err)
			}
			known[id] = &r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return known, nil
}

// Known reports which of ids the store holds, without reading their
// records (KnownMessages decodes each).
func (db *DB) Known(ids []string) (map[string]bool, error) {
	out := make(map[string]bool)
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMsg)
		for _, id := range ids {
			if id != "" && !out[id] && b.Get([]byte(id)) != nil {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}

// MessageAt returns the Message-ID seen at a folder position, or ErrNotFound.
func (db *DB) MessageAt(account, mailbox string, uidvalidity, uid uint32) (string, error) {
	k, err := locKey(account, mailbox, uidvalidity, uid)
	if err != nil {
		return "", err
	}
	var id string
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMsgLoc).Get(k)
		if v == nil {
			return fmt.Errorf("message at %s/%s uidvalidity %d uid %d: %w", account, mailbox, uidvalidity, uid, ErrNotFound)
		}
		id = string(v)
		return nil
	})
	return id, err
}

// SyncState returns what was remembered of a folder; the zero value when
// the folder was never synced.
func (db *DB) SyncState(account, mailbox string) (SyncState, error) {
	var s SyncState
	k, err := folderKey(account, mailbox)
	if err != nil {
		return s, err
	}
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSync).Get(k)
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("store: decode sync state of %s/%s: %w", account, mailbox, err)
		}
		return nil
	})
	return s, err
}

// PutSyncState remembers a folder's sync position.
func (db *DB) PutSyncState(account, mailbox string, s SyncState) error {
	k, err := folderKey(account, mailbox)
	if err != nil {
		return err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("store: encode sync state of %s/%s: %w", account, mailbox, err)
	}
	return db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSync).Put(k, v); err != nil {
			return fmt.Errorf("store: put sync state of %s/%s: %w", account, mailbox, err)
		}
		return nil
	})
}

// ForgetFolder drops the location index of one UIDVALIDITY epoch of a
// folder (after the server changed UIDVALIDITY, the old UIDs mean nothing).
// Messages themselves stay: identity is the Message-ID.
func (db *DB) ForgetFolder(account, mailbox string, uidvalidity uint32) (int, error) {
	k, err := folderKey(account, mailbox)
	if err != nil {
		return 0, err
	}
	prefix := binary.BigEndian.AppendUint32(k, uidvalidity)
	n := 0
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMsgLoc)
		var keys [][]byte
		c := b.Cursor()
		for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
			keys = append(keys, bytes.Clone(key))
		}
		// Delete after the walk: deleting under a cursor skips keys.
		for _, key := range keys {
			if err := b.Delete(key); err != nil {
				return fmt.Errorf("store: forget %s/%s uidvalidity %d: %w", account, mailbox, uidvalidity, err)
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
