//go:build !linux

package stepwait

import "time"

// dirWatch is inotify's on Linux; elsewhere there is none and waiters
// poll.
type dirWatch struct{}

func watchDir(string) *dirWatch { return nil }

func (w *dirWatch) wait(time.Duration) {}

func (w *dirWatch) close() {}
