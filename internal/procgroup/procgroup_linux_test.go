package procgroup

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// What the caller set in SysProcAttr stays.
func TestKillOnCancelKeepsSysProcAttr(t *testing.T) {
	cmd := exec.CommandContext(context.Background(), "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	KillOnCancel(cmd, time.Second)
	if !cmd.SysProcAttr.Setpgid || cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL || cmd.Cancel == nil || cmd.WaitDelay != time.Second {
		t.Fatalf("after KillOnCancel: %+v, cancel set %v, wait delay %v", cmd.SysProcAttr, cmd.Cancel != nil, cmd.WaitDelay)
	}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
}
