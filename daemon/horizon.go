package daemon

import (
	"sync/atomic"
	"time"

	"followupd/message"
)

// historyMargin is how much older than the horizon (below) both of a
// message's dates must be before it is taken for history. It absorbs a
// client clock that runs behind, a Date header written before the
// INTERNALDATE, and time zones written wrong; a real answer is never a week
// older than what it answers.
const historyMargin = 7 * 24 * time.Hour

// horizon tells history apart from mail that can matter. A first start
// against a mailbox of years fetches every header (the store keeps them all,
// for threading), but most of that mail can concern no follow-up: an offer is
// only tracked when sent within lookback, every follow-up the store ever held
// was sent at or after store.OldestSent, and whatever concerns a follow-up
// (an answer, an auto-reply, a bounce, the sender's own follow-up, our own
// copy) is written after it. So a Sent or incoming message whose Date and
// INTERNALDATE are both older than
//
//	min(now − lookback, OldestSent) − historyMargin
//
// is stored without being classified or applied: no verdict, no tracking, no
// body fetch, and not even parsed beyond its Message-ID and Date (the
// watcher's Shallow; the store parses it when it is read). In a long
// backlog (a first start) the watcher does not even fetch more of it than
// those, what it cites, From, To, Cc and Subject: no other field and no
// BODYSTRUCTURE, so a stored history record has no attachment list
// (imapwatch's light fetch; lightOK keeps only what historyOf will store as
// it is, and a light record that must be looked at after all is fetched
// again in full, never judged on the fields a light fetch has). That is
// most of an initial sync's work (bench/NOTES.md).
//
// What stays exact:
//   - our own messages (followupd.* Message-IDs), Drafts and the Stop folder
//     are always processed, whatever their dates;
//   - a message citing (In-Reply-To, References) a tracked message or one of
//     our reminders is judged whatever its dates (historyOf): a client
//     clock far behind, copied into INTERNALDATE by an APPEND-based
//     delivery, does not hide an answer. Only such a message synced before
//     the offer it cites is tracked (a first start, the folders syncing side
//     by side) goes unjudged;
//   - a message without either date is processed;
//   - OldestSent covers follow-ups in every state, finished and uncertain ones
//     included (a late answer still counts for those), so a UIDVALIDITY
//     change that refetches a folder under a store with old follow-ups
//     processes everything those could see.
//
// It is off in replay (backtest feeds messages at their own time anyway).
type horizon struct {
	oldest atomic.Int64 // OldestSent in Unix ns; 0: not known (nothing is history)
}

// noOldest marks a store without follow-ups in horizon.oldest.
const noOldest = int64(1<<63 - 1)

// refreshHorizon re-reads the store's OldestSent (once per fetched batch; a
// read error leaves nothing to be history until the next batch).
func (d *Daemon) refreshHorizon() {
	if d.opt.Replay {
		return
	}
	t, ok, err := d.db.OldestSent()
	switch {
	case err != nil:
		d.log.Warn("reading the oldest follow-up; processing every message in full", "err", err)
		d.hist.oldest.Store(0)
	case !ok:
		d.hist.oldest.Store(noOldest)
	default:
		d.hist.oldest.Store(max(t.UnixNano(), 1))
	}
}

// historyBefore returns the horizon, or the zero time when nothing may be
// taken for history.
func (d *Daemon) historyBefore() time.Time {
	if d.opt.Replay {
		return time.Time{}
	}
	o := d.hist.oldest.Load()
	if o == 0 {
		return time.Time{}
	}
	// The live configuration's lookback: the watcher asks this of the
	// Daemon it was made with, whose cfg a reload does not change.
	h := d.clk.Now().Add(-lookbackOf(d.Config()))
	if o != noOldest && o < h.UnixNano() {
		h = time.Unix(0, o)
	}
	return h.Add(-historyMargin)
}

// isHistory reports whether rec is history by the horizon h (see horizon).
func isHistory(rec *message.Record, h time.Time) bool {
	if h.IsZero() || rec.IsOwn() {
		return false
	}
	switch rec.Role {
	case message.RoleDrafts, message.RoleStop:
		return false
	}
	latest := rec.Date
	if rec.Internal.After(latest) {
		latest = rec.Internal
	}
	return !latest.IsZero() && latest.Before(h)
}

// shallowOK is the watcher's Shallow: history may reach the sink unparsed
// (message.ParseShallow), to be stored as it is.
func (d *Daemon) shallowOK(rec *message.Record) bool {
	return isHistory(rec, d.historyBefore())
}

// lightOK is the watcher's Light: of records fetched light (only a few
// header fields, no structure), those the sink will store as they are —
// exactly historyOf's history, so nothing it would look at arrives
// partial. One read transaction each for what is known and what is
// tracked; the sink asks again (the answer may change in between:
// handleMessages fetches the batch again then).
func (d *Daemon) lightOK(recs []*message.Record) ([]bool, error) {
	d.refreshHorizon()
	h := d.historyBefore()
	var ids []string
	for _, rec := range recs {
		if isHistory(rec, h) {
			ids = append(ids, rec.MessageID)
		}
	}
	keep := make([]bool, len(recs))
	if len(ids) == 0 {
		return keep, nil
	}
	stored, err := d.db.Known(ids)
	if err != nil {
		return nil, err
	}
	known := make(map[string]*message.Record, len(stored))
	for id := range stored {
		known[id] = &message.Record{} // historyOf asks only whether
	}
	history, _, err := d.historyOf(recs, known)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		keep[i] = history[rec]
	}
	return keep, nil
}

// historyOf picks the batch's history: new records (not known) that are
// history by the horizon and cite (In-Reply-To, References) no tracked
// message nor one of our reminders — a message citing one is written after
// it whatever its dates say (a client clock far behind, copied into
// INTERNALDATE by an APPEND-based delivery), so it is judged (cited). One
// read transaction for the batch.
func (d *Daemon) historyOf(recs []*message.Record, known map[string]*message.Record) (history, cited map[*message.Record]bool, err error) {
	h := d.historyBefore()
	history = make(map[*message.Record]bool)
	var ids []string
	for _, rec := range recs {
		if known[rec.MessageID] == nil && isHistory(rec, h) {
			history[rec] = true
			ids = append(ids, rec.InReplyTo...)
			ids = append(ids, rec.References...)
		}
	}
	if len(ids) == 0 {
		return history, nil, nil
	}
	tracked, err := d.db.Tracked(ids)
	if err != nil {
		return nil, nil, err
	}
	for rec := range history {
		for _, id := range rec.ThreadIDs() {
			if tracked[id] {
				delete(history, rec)
				if cited == nil {
					cited = make(map[*message.Record]bool)
				}
				cited[rec] = true
				break
			}
		}
	}
	return history, cited, nil
}
