// Package procgroup runs a command in a process group of its own, killed
// whole when the command's context ends: the helpers it started (git's
// remote-https, upload-pack, index-pack) must not go on writing after a
// cancel.
package procgroup

import (
	"os/exec"
	"syscall"
	"time"
)

// KillOnCancel makes cmd, made by exec.CommandContext and not yet started,
// lead a process group of its own and SIGKILL that group when its context
// ends. waitDelay bounds how long Wait then waits for pipes a leftover may
// hold (see exec.Cmd.WaitDelay); 0 waits for them.
func KillOnCancel(cmd *exec.Cmd, waitDelay time.Duration) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
}
