//go:build !unix

package archive

import "io/fs"

type fileID struct{}

// inode: hard links are not detected on this platform; files are copied.
func inode(fs.FileInfo) (fileID, bool) { return fileID{}, false }
