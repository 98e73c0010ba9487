package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reap timing: how long Reap waits for the groups it killed to be gone,
// and how often it looks.
const (
	reapWait = 2 * time.Second
	reapPoll = 20 * time.Millisecond
)

// Reap kills the replicas an earlier kgate recorded (Options.OnReplicas)
// that still run, and returns how many it killed: it is for a restart
// after a crash, before any replica starts. A record's process group gets
// SIGKILL if its replica is still running and is that very process, its
// start (ProcessStart) the recorded one, so that a reused pid is never
// killed; or, the replica gone (as its parent-death signal has it), if a
// process is left in its group that carries the replica's Mark in its
// environment. Reap then waits, up to about 2 s or until ctx is done, for
// those groups to be gone, and logs those that are not.
//
// Between the check and the kill, a process could exit and its pid be
// taken by a new group: a window of microseconds against the whole pid
// space cycling, which is accepted.
func Reap(ctx context.Context, recs []Record, log *slog.Logger) (reaped int) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(recs) == 0 {
		return 0
	}
	boot, err := bootID()
	if err != nil {
		log.Warn("not reaping the replicas an earlier kgate left: cannot tell its processes", "error", err)
		return 0
	}
	var killed []Record
	for _, rec := range recs {
		found := leftRunning(rec, boot)
		if found == "" {
			continue
		}
		if err := syscall.Kill(-rec.PID, syscall.SIGKILL); err != nil {
			if !errors.Is(err, syscall.ESRCH) { // else gone meanwhile
				log.Warn("cannot kill a replica an earlier kgate left", "revision", rec.Revision, "pid", rec.PID, "error", err)
			}
			continue
		}
		log.Info("killed a replica an earlier kgate left running", "revision", rec.Revision, "pid", rec.PID, "found", found)
		killed = append(killed, rec)
	}
	waitGroupsGone(ctx, killed, log)
	return len(killed)
}

// leftRunning says how rec's group was found still running, "" if it was
// not: "replica", the recorded process itself, or "group", processes it
// started, carrying its mark.
func leftRunning(rec Record, boot string) (found string) {
	if rec.PID <= 1 || rec.PID == os.Getpid() || rec.Started.BootID != boot {
		return ""
	}
	if st, err := readStat(rec.PID); err == nil && st.state != 'Z' && st.start == rec.Started.Ticks {
		return "replica"
	}
	if rec.Mark == "" {
		return ""
	}
	// While a process is left in a group, the group's id, which was its
	// leader's pid, is not given to a new process: a marked member is
	// from the recorded group, and all the group is.
	members, _ := groupMembers(rec.PID)
	for _, pid := range members {
		if hasMark(pid, rec.Mark) {
			return "group"
		}
	}
	return ""
}

// waitGroupsGone waits, up to reapWait or until ctx is done, until no
// process of recs' groups runs, and logs the groups that still do.
func waitGroupsGone(ctx context.Context, recs []Record, log *slog.Logger) {
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, reapWait)
	defer cancel()
	tick := time.NewTicker(reapPoll)
	defer tick.Stop()
	for {
		recs = stillRunning(recs)
		if len(recs) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			for _, rec := range recs {
				log.Warn("a killed replica's processes are still running", "revision", rec.Revision, "pid", rec.PID)
			}
			return
		}
	}
}

// stillRunning keeps the records whose groups still run: all of them
// if the processes cannot be listed.
func stillRunning(recs []Record) []Record {
	left := recs[:0:0]
	for _, rec := range recs {
		if members, err := groupMembers(rec.PID); err != nil || len(members) > 0 {
			left = append(left, rec)
		}
	}
	return left
}

// groupMembers returns the processes of group pgid that have not exited:
// a zombie, exited but not yet reaped by a parent (often init, for
// replicas of a kgate that died), is not one.
func groupMembers(pgid int) ([]int, error) {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return nil, nil // no process at all, the quick answer
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		if st, err := readStat(pid); err == nil && st.pgid == pgid && st.state != 'Z' {
			out = append(out, pid)
		}
	}
	return out, nil
}

// hasMark says whether pid's environment holds mark. A process whose
// environment cannot be read is not marked.
func hasMark(pid int, mark string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(markVar + "=" + mark)
	for v := range bytes.SplitSeq(env, []byte{0}) {
		if bytes.Equal(v, want) {
			return true
		}
	}
	return false
}

// processStart reads the identity of pid's start.
func processStart(pid int) (ProcessStart, error) {
	boot, err := bootID()
	if err != nil {
		return ProcessStart{}, err
	}
	st, err := readStat(pid)
	if err != nil {
		return ProcessStart{}, err
	}
	return ProcessStart{BootID: boot, Ticks: st.start}, nil
}

// bootID is the id of this boot of the machine.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("reading the boot id: it is empty")
	}
	return id, nil
}

// procStat is what kgate reads of /proc/PID/stat.
type procStat struct {
	state byte   // field 3: R, S, D, Z, T...
	pgid  int    // field 5
	start uint64 // field 22: the start time, in clock ticks since boot
}

// readStat reads pid's /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, fmt.Errorf("reading process %d's state: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat parses a /proc/PID/stat line: "pid (comm) state ppid pgrp
// ...", where comm may hold spaces and parentheses, so the fields are
// counted from its last ')'.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parsing process state %q: no ')'", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parsing process state %q: %d fields after the command", s, len(f))
	}
	pgid, err := strconv.Atoi(f[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parsing process state: process group: %w", err)
	}
	start, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parsing process state: start time: %w", err)
	}
	return procStat{state: f[0][0], pgid: pgid, start: start}, nil
}
