package main

import (
	"io"

	"followupd/control"
)

// cmdCtl runs a control command (status, list, show, cancel, snooze,
// approve, resolve, backup) against the running daemon's control socket;
// the commands themselves live in package control so the daemon's tests run
// them in-process.
func cmdCtl(name string, args []string, stdout, stderr io.Writer) int {
	return control.Main(name, args, stdout, stderr)
}
