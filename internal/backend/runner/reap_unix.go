//go:build unix

package runner

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// reaper collects exit statuses. As PID 1 (in a container) it reaps every
// child, orphans included, so none stays a zombie; otherwise it waits for
// the processes it started only.
type reaper struct {
	init bool

	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus
	sigc    chan os.Signal
	quit    chan struct{}
}

func newReaper() *reaper {
	r := &reaper{init: os.Getpid() == 1, waiting: map[int]chan syscall.WaitStatus{}}
	if r.init {
		r.sigc = make(chan os.Signal, 1)
		r.quit = make(chan struct{})
		signal.Notify(r.sigc, syscall.SIGCHLD)
		go r.loop()
	}
	return r
}

func (r *reaper) stop() {
	if r.init {
		signal.Stop(r.sigc)
		close(r.quit)
	}
}

// start starts cmd; the channel receives its status once it has exited.
func (r *reaper) start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	c := make(chan syscall.WaitStatus, 1)
	if !r.init {
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		pid := cmd.Process.Pid
		go func() {
			var ws syscall.WaitStatus
			for {
				_, err := syscall.Wait4(pid, &ws, 0, nil)
				if err != syscall.EINTR {
					break
				}
			}
			c <- ws
		}()
		return c, nil
	}
	// Hold the lock so the loop cannot reap the child before it is known.
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.waiting[cmd.Process.Pid] = c
	return c, nil
}

func (r *reaper) loop() {
	for {
		select {
		case <-r.sigc:
		case <-r.quit:
			return
		}
		r.mu.Lock()
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			if c, ok := r.waiting[pid]; ok {
				c <- ws
				delete(r.waiting, pid)
			}
		}
		r.mu.Unlock()
	}
}
