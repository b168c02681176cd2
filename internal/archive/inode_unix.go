//go:build unix

package archive

import (
	"io/fs"
	"syscall"
)

type fileID struct{ dev, ino uint64 }

// inode identifies a file with more than one link.
func inode(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true //nolint:unconvert // widths differ by platform
}
