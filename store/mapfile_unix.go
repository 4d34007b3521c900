//go:build unix && !solaris && !aix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// mapFile maps the file at path read-only under a shared flock (the lock
// bbolt takes), waiting up to timeout for a writer to let go; release
// unmaps it and drops the lock. An empty file maps to no bytes.
func mapFile(path string, timeout time.Duration) (data []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fd := int(f.Fd())
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, nil, fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, nil, errLockTimeout
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := func() { f.Close() } // closing drops the lock
	st, err := f.Stat()
	if err != nil {
		done()
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, done, nil
	}
	if int64(int(size)) != size {
		done()
		return nil, nil, fmt.Errorf("file of %d bytes too large to map", size)
	}
	data, err = syscall.Mmap(fd, 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("map: %w", err)
	}
	return data, func() { _ = syscall.Munmap(data); done() }, nil
}
