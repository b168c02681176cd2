package stepwait

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// dirWatch wakes a waiter when a file is made, written or renamed into a
// folder (inotify), so that an idle step container, and the job
// container while a long step runs, sleep instead of polling the folder
// every few milliseconds.
type dirWatch struct{ fd int }

// watchDir watches dir; nil when inotify is not available (the caller
// polls instead).
func watchDir(dir string) *dirWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_MODIFY); err != nil {
		_ = unix.Close(fd)
		return nil
	}
	return &dirWatch{fd: fd}
}

// wait returns once something was made in the folder since the last
// wait, or after d at most.
func (w *dirWatch) wait(d time.Duration) {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(d/time.Millisecond)); n <= 0 || err != nil {
		return
	}
	var buf [4096]byte
	for {
		if _, err := unix.Read(w.fd, buf[:]); err != nil {
			if !errors.Is(err, unix.EINTR) {
				return // EAGAIN: drained
			}
		}
	}
}

func (w *dirWatch) close() {
	if w != nil {
		_ = unix.Close(w.fd)
	}
}
