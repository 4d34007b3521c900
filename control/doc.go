// Package control is followupd's control channel: the daemon holds the
// bbolt file, so `followupd status|list|show|cancel|snooze|approve|resolve|
// backup` ask the running daemon over a Unix socket instead of opening it.
//
// # Protocol (version 1)
//
// HTTP/1.1 over the Unix socket, JSON bodies, every path under /v1 so a
// later incompatible protocol can live beside it; each response carries
// the header Followupd-Control: 1. It is curl-able:
//
//	curl --unix-socket /run/followupd/control.sock http://followupd/v1/status
//
//	GET  /v1/status                        Status
//	GET  /v1/followups?account=&state=&rule=  []FollowUp
//	GET  /v1/followups/{id}                Thread (history and ledger)
//	POST /v1/followups/{id}/cancel         FollowUp
//	POST /v1/followups/{id}/snooze         {"by":"2 days"} -> FollowUp
//	POST /v1/followups/{id}/resolve        {"outcome":"sent"|"unsent"} -> FollowUp
//	POST /v1/approve                       ApproveRequest -> ApproveResult
//	GET  /v1/backup                        the bbolt file (a consistent hot copy)
//
// Errors are {"error": "...", "code": "not_found"|"conflict"|"bad_request"|
// "internal"} with the matching HTTP status.
//
// # Security
//
// The socket is created under a temporary name, chmod 0600, then renamed
// into place, so it is never reachable with wider permissions; on Linux
// each connection's peer (SO_PEERCRED) must also be the daemon's own user
// or root (or the overflow uid, as root appears under PrivateUsers=). Whoever can connect can cancel follow-ups and read the whole
// store (backup), like whoever can read the bbolt file.
//
// The package knows nothing of the store: the daemon implements Backend
// and converts its types into the protocol's (daemon/control.go).
package control
