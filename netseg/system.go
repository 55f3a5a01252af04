package netseg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Probe reports whether this process can enforce segmentation here: nil,
// an error wrapping ErrNoRoot (privileges), or one wrapping ErrNoBPF (kernel
// features, or no cgroup v2 hierarchy). The message names what is missing.
func Probe() error {
	if err := haveCaps(); err != nil {
		return err
	}
	if _, err := cgroup2Mount("/proc/self/mountinfo"); err != nil {
		return err
	}
	for _, pt := range []ebpf.ProgramType{ebpf.CGroupSockAddr, ebpf.CGroupSKB} {
		if err := features.HaveProgramType(pt); err != nil {
			return featureErr("program type "+pt.String(), err)
		}
	}
	for _, mt := range []ebpf.MapType{ebpf.LPMTrie, ebpf.ArrayOfMaps, ebpf.LRUHash, ebpf.Hash, ebpf.Array} {
		if err := features.HaveMapType(mt); err != nil {
			return featureErr("map type "+mt.String(), err)
		}
	}
	if err := features.HaveProgramHelper(ebpf.CGroupSKB, asm.FnSkFullsock); err != nil {
		return featureErr("helper bpf_sk_fullsock in cgroup skb programs", err)
	}
	return nil
}

func featureErr(what string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: the kernel has no %s (needs Linux 5.7 or later with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF)", ErrNoBPF, what)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: the kernel refused to load BPF objects (%v); run as root", ErrNoRoot, err)
	}
	return fmt.Errorf("%w: probing %s: %v", ErrNoBPF, what, err)
}

// Capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capBPF      = 39
)

func haveCaps() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: reading this process's capabilities: %v", ErrNoRoot, err)
	}
	var missing []string
	for _, c := range []struct {
		n    uint
		name string
	}{{capBPF, "CAP_BPF"}, {capNetAdmin, "CAP_NET_ADMIN"}, {capSysAdmin, "CAP_SYS_ADMIN"}} {
		if data[c.n/32].Effective&(1<<(c.n%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: this process (uid %d) lacks %s; run as root", ErrNoRoot, os.Geteuid(), strings.Join(missing, ", "))
	}
	return nil
}

// cgroup2Mount finds the cgroup v2 hierarchy in a mountinfo file (the
// unified mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
// systems).
func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("%w: cannot read %s: %v", ErrNoBPF, mountinfo, err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

func parseCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" || pf[3] != "/" {
			continue
		}
		return unescapeMount(pf[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%w: reading mountinfo: %v", ErrNoBPF, err)
	}
	return "", fmt.Errorf("%w: no cgroup v2 hierarchy is mounted; mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`", ErrNoBPF)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupID returns the id of the cgroup v2 folder dir (its inode number, the
// id bpf_get_current_cgroup_id and link info report).
func cgroupID(dir string) (uint64, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return 0, err
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("%s is not in a cgroup v2 hierarchy", dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("%s is not a folder", dir)
	}
	return st.Ino, nil
}

// onBPFFS reports whether dir is on a bpf filesystem.
func onBPFFS(dir string) (bool, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return false, err
	}
	return sfs.Type == unix.BPF_FS_MAGIC, nil
}

// ensurePinDir makes the pin folder, mounting a bpf filesystem at bpfRoot
// first when bpfRoot is not one (the usual /sys/fs/bpf on systems that do
// not mount it at boot).
func ensurePinDir(pinPath, bpfRoot string) error {
	parent := filepath.Dir(pinPath)
	if _, err := os.Stat(parent); err != nil {
		return fmt.Errorf("netseg: pin folder %s: %w; mount a bpf filesystem (`mount -t bpf bpf /sys/fs/bpf`) or set the pin path", pinPath, err)
	}
	ok, err := onBPFFS(parent)
	if err != nil {
		return fmt.Errorf("netseg: pin folder %s: %w", pinPath, err)
	}
	if !ok {
		if filepath.Clean(parent) != filepath.Clean(bpfRoot) {
			return fmt.Errorf("netseg: %s is not on a bpf filesystem; mount one there (`mount -t bpf bpf %s`) or set the pin path under one", parent, parent)
		}
		if err := unix.Mount("bpf", bpfRoot, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("netseg: mounting a bpf filesystem at %s: %w; mount it yourself (`mount -t bpf bpf %s`)", bpfRoot, err, bpfRoot)
		}
	}
	if err := os.Mkdir(pinPath, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("netseg: creating pin folder: %w", err)
	}
	return nil
}

// CgroupMount returns the cgroup v2 mount point of this machine, as found in
// /proc/self/mountinfo. Segment cgroups are paths below it.
func CgroupMount() (string, error) { return cgroup2Mount("/proc/self/mountinfo") }
