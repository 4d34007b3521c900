// Package interop holds followupd's interop suite: the daemon against a
// real, private Dovecot (IMAP, LMTP) and Postfix (SMTP) started by
// internal/mailtest on loopback. It has no code of its own; every scenario
// of issue 4 is a test in this directory:
//
//	1  offer tracked, threaded reminder delivered at the due time
//	2  answer before the due time: answered within 1 s of delivery (IDLE), nothing sent
//	3  answer while the daemon is stopped: resync after restart, nothing sent
//	4  Dovecot restarted / connections cut: reconnect, answer still cancels
//	5  SIGKILL loop around the due send (real binary): never twice, uncertain only when unknowable
//	6  Postfix down / 4xx: retried later; 5xx: failed with the server's text, not retried
//	7  Sent deleted and recreated (new UIDVALIDITY): nothing tracked twice, nothing re-sent
//	8  two accounts on one server side by side, no crosstalk
//	9  TLS and STARTTLS with ca_file; a clear error without it; no passwords in logs
//	10 bbolt file locked, unreadable, corrupt: clear error, exit non-zero, file untouched
//
// Each test logs "scenario N: ... took D". The suite needs root and the
// Debian packages dovecot-imapd, dovecot-lmtpd and postfix
// (scripts/install-deps); without them it is skipped locally and fails
// under CI=true (mailtest decides).
//
// Run: go test -race -count=1 ./interop/ -v
package interop
