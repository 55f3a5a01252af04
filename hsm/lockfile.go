package hsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// LockManifest takes the lock that every change of the key manifest in dir
// holds (dir/manifest.lock, created with dir when missing), waiting until
// ctx is done, and returns its release. Open a file-backed token (SoftHSM)
// under it when other processes may be changing keys: SoftHSM's object
// store can fail a login (CKR_GENERAL_ERROR) while another process rewrites
// the token. Do not hold it across Init, NewService or a Service method,
// which take it themselves.
func LockManifest(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hsm: create keys dir: %w", err)
	}
	return lockFile(ctx, filepath.Join(dir, LockFile))
}

// lockFile takes an exclusive flock(2) on path (created 0600), waiting until
// ctx is done. flock locks belong to the open file, so two handles in one
// process exclude each other as two processes do. The returned function
// releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	return flockFile(ctx, path, unix.LOCK_EX)
}

// lockFileShared takes a shared flock(2) on path: many holders at once, none
// while an exclusive holder (a manifest change) has it. Each call opens its
// own descriptor, so concurrent holders in one process do not release each
// other's lock.
func lockFileShared(ctx context.Context, path string) (func(), error) {
	return flockFile(ctx, path, unix.LOCK_SH)
}

func flockFile(ctx context.Context, path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hsm: open lock %s: %w", path, err)
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("hsm: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("hsm: waiting for the lock on %s (another tradecore process is changing the keys): %w", path, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// fileID identifies one version of a file that is only ever replaced by
// rename: inode, size, modification and change times.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, nil
}
