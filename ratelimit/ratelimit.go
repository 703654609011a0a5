package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind is what a counter counts.
type Kind uint8

const (
	// Requests counts requests in a fixed window.
	Requests Kind = iota + 1
	// Tokens counts tokens in a fixed window.
	Tokens
	// Cost counts money in a fixed window, in micro-dollars (see MicroDollars).
	Cost
	// Concurrent counts slots held at once; it has no window.
	Concurrent
)

var kindNames = [...]string{Requests: "requests", Tokens: "tokens", Cost: "cost", Concurrent: "concurrent"}

// String returns the kind's name as used in configuration and store keys.
func (k Kind) String() string {
	if k >= Requests && k <= Concurrent {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Windowed reports whether counters of kind k count in fixed windows.
func (k Kind) Windowed() bool { return k != Concurrent }

// MaxAmount is the largest limit or amount a store accepts: 2^53−1, the
// largest integer the Redis scripts' Lua numbers hold exactly.
const MaxAmount = 1<<53 - 1

// MaxItems bounds the counters of one reservation, so one admission is a
// bounded amount of work in the store.
const MaxItems = 64

// Limit identifies one counter and its ceiling. Two limits with the same
// Name, Key, Kind and Window are the same counter, whatever their Max.
type Limit struct {
	// Name is the limit's configured name, for example "tenant-tpm".
	Name string
	// Key is the resolved key value, for example the consumer "acme"; any
	// string, including empty (a global limit).
	Key string
	// Kind is what the counter counts.
	Kind Kind
	// Max is the ceiling, in the kind's unit: requests, tokens,
	// micro-dollars or slots. An admission may bring used+reserved up to
	// Max, never over it.
	Max int64
	// Window is the fixed window's length for windowed kinds (whole
	// milliseconds, at least one); it must be zero for Concurrent.
	Window time.Duration
}

// Item is one counter of a reservation and the amount to take from it: an
// estimate for Requests, Tokens and Cost, the number of slots for
// Concurrent.
type Item struct {
	Limit
	Amount int64
}

// State is a counter's figures after a decision, for response headers.
type State struct {
	// Limit is the counter's Max.
	Limit int64
	// Remaining is Max minus what is used and reserved, never below zero.
	Remaining int64
	// Reset is the end of the counter's window on the store's clock; zero
	// for Concurrent.
	Reset time.Time
	// ResetIn is the time from the decision to Reset; zero for Concurrent.
	ResetIn time.Duration
}

// RetryAfter is ResetIn in whole seconds rounded up, as a Retry-After
// header wants it; 0 for Concurrent, which has no reset time.
func (s State) RetryAfter() int64 {
	if s.ResetIn <= 0 {
		return 0
	}
	return int64((s.ResetIn + time.Second - 1) / time.Second)
}

// Decision is the answer to Reserve.
type Decision struct {
	// Reservation is the admitted reservation, nil when rejected. It must
	// be committed exactly once (Store.Commit or Keeper.Commit).
	Reservation *Reservation
	// Rejected is the index of the first item, in the order given, that
	// did not fit; -1 when admitted.
	Rejected int
	// States holds every item's figures after the decision, in order.
	States []State
}

// Admitted reports whether every item fitted and was reserved.
func (d Decision) Admitted() bool { return d.Reservation != nil }

// Reservation is an admitted reservation: what Commit and Renew need to find
// it again in the store. It is immutable and safe to share.
type Reservation struct {
	owner  Store // the store that admitted it
	id     string
	items  []Item
	starts []int64 // window start per item, Unix ms on the store's clock; 0 for Concurrent
	lease  time.Duration
}

// ID is the reservation's store-wide unique id.
func (r *Reservation) ID() string { return r.id }

// Items returns a copy of the reserved items.
func (r *Reservation) Items() []Item { return append([]Item(nil), r.items...) }

// Lease is how long the reservation survives in the store unless renewed.
func (r *Reservation) Lease() time.Duration { return r.lease }

// Store keeps counters and reservations. Local and Redis implement it with
// the same semantics; every method is safe for concurrent use.
type Store interface {
	// Reserve admits all items at once, counting each Amount as reserved,
	// or rejects and takes nothing. The reservation lives for lease unless
	// renewed; once its lease has passed, its amounts and slots are
	// refunded.
	Reserve(ctx context.Context, items []Item, lease time.Duration) (Decision, error)
	// Commit replaces each item's reservation by actual[i] (same order as
	// the items; ignored for Concurrent, whose slots are released), charged
	// to the window the reservation was admitted in; nothing is charged
	// once that window has ended. A repeated commit is a no-op. A commit
	// of a reservation whose lease passed still charges actual, once, for
	// an hour after the store refunded the reservation.
	Commit(ctx context.Context, r *Reservation, actual []int64) error
	// Renew extends every given reservation by its lease from now. It
	// returns those found lost: a part of them had already expired and
	// been refunded (the rest is renewed). Items of a window that has
	// ended are not renewed and are never lost.
	Renew(ctx context.Context, rs []*Reservation) (lost []*Reservation, err error)
	// Close releases the store's resources.
	Close() error
}

// ErrInvalid is wrapped by the errors for arguments a store refuses
// (a programming or configuration error, never the store's state).
var ErrInvalid = errors.New("ratelimit: invalid argument")

// ErrUnavailable matches, with errors.Is, every *StoreError: the store could
// not answer in time or at all. A caller maps it to its fail-open or
// fail-closed policy.
var ErrUnavailable = errors.New("ratelimit: store unavailable")

// StoreError is a failed store call: the operation and its cause (a
// timeout, a refused connection, an error reply...).
type StoreError struct {
	Op  string // "reserve", "commit" or "renew"
	Err error
}

func (e *StoreError) Error() string { return "ratelimit: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded)
// tells a timeout.
func (e *StoreError) Unwrap() error { return e.Err }

// Is makes every StoreError match ErrUnavailable.
func (e *StoreError) Is(target error) bool { return target == ErrUnavailable }

// MicroDollars converts dollars to the unit of Cost counters, rounded to the
// nearest micro-dollar: integers cannot drift as floats summed over millions
// of requests do. It returns an error for a negative, NaN, infinite or too
// large amount.
func MicroDollars(dollars float64) (int64, error) {
	m := math.Round(dollars * 1e6)
	if math.IsNaN(m) || m < 0 || m > MaxAmount {
		return 0, fmt.Errorf("%w: %v dollars is not an amount in [0, %v]", ErrInvalid, dollars, float64(MaxAmount)/1e6)
	}
	return int64(m), nil
}

// Dollars converts micro-dollars back to dollars, for display.
func Dollars(micro int64) float64 { return float64(micro) / 1e6 }

// ms is the store's time unit: windows, leases and clocks are whole
// milliseconds, as in the Redis scripts.
const ms = int64(time.Millisecond)

// margin is how long a counter outlives its window or its last lease, so
// that no key expires while a script is about to read it.
const margin = time.Second

// lateCommit is how long a windowed counter keeps the id of a reservation
// whose lease passed: a commit within that time still charges its actual
// amount, once. Only expired reservations are kept, so a counter holds no
// record of the (many) committed ones.
const lateCommit = time.Hour

type counterID struct {
	name, key string
	kind      Kind
	window    time.Duration
}

// id identifies l's counter in a Local store. A key value longer than
// keyPartMax, or one that starts with '#', is replaced by its hash, so a
// hostile key cannot make a counter hold kilobytes; kept values never
// start with '#', so they cannot collide with hashed ones.
func (l Limit) id() counterID {
	key := l.Key
	if len(key) > keyPartMax || strings.HasPrefix(key, "#") {
		key = hashKey(key)
	}
	return counterID{l.Name, key, l.Kind, l.Window}
}

// keyPartMax bounds one part of a counter's name; longer values are
// hashed.
const keyPartMax = 128

// hashKey names a long key value by its SHA-256.
func hashKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "#" + hex.EncodeToString(sum[:])
}

// validateReserve checks the arguments of Reserve.
func validateReserve(items []Item, lease time.Duration) error {
	if len(items) == 0 || len(items) > MaxItems {
		return fmt.Errorf("%w: %d items, want 1 to %d", ErrInvalid, len(items), MaxItems)
	}
	if lease < time.Millisecond {
		return fmt.Errorf("%w: lease %v is under 1ms", ErrInvalid, lease)
	}
	for i, it := range items {
		if err := it.validate(); err != nil {
			return fmt.Errorf("%w: item %d (%q): %s", ErrInvalid, i, it.Name, err)
		}
		// quadratic, but over at most MaxItems and without allocating
		for j := range i {
			if items[j].id() == it.id() {
				return fmt.Errorf("%w: items %d and %d are the same counter %q", ErrInvalid, j, i, it.Name)
			}
		}
	}
	return nil
}

func (it Item) validate() error {
	switch {
	case it.Name == "":
		return errors.New("empty name")
	case it.Kind < Requests || it.Kind > Concurrent:
		return fmt.Errorf("unknown kind %v", it.Kind)
	case it.Max < 0 || it.Max > MaxAmount:
		return fmt.Errorf("max %d is outside [0, 2^53)", it.Max)
	case it.Amount < 0 || it.Amount > MaxAmount:
		return fmt.Errorf("amount %d is outside [0, 2^53)", it.Amount)
	case !it.Kind.Windowed() && it.Window != 0:
		return fmt.Errorf("a %v limit has no window, got %v", it.Kind, it.Window)
	case it.Kind.Windowed() && (it.Window < time.Millisecond || int64(it.Window)%ms != 0):
		return fmt.Errorf("window %v is not a positive whole number of milliseconds", it.Window)
	}
	return nil
}

// validateCommit checks the arguments of Commit.
func validateCommit(s Store, r *Reservation, actual []int64) error {
	if err := checkOwner(s, r); err != nil {
		return err
	}
	if len(actual) != len(r.items) {
		return fmt.Errorf("%w: %d actual amounts for %d items", ErrInvalid, len(actual), len(r.items))
	}
	for i, a := range actual {
		if a < 0 || a > MaxAmount {
			return fmt.Errorf("%w: actual amount %d of item %d is outside [0, 2^53)", ErrInvalid, a, i)
		}
	}
	return nil
}

// validateRenew checks the arguments of Renew.
func validateRenew(s Store, rs []*Reservation) error {
	for _, r := range rs {
		if err := checkOwner(s, r); err != nil {
			return err
		}
	}
	return nil
}

// checkOwner checks that s admitted r: a reservation taken from another
// store (say a local fallback) would find nothing to release in s.
func checkOwner(s Store, r *Reservation) error {
	if r == nil {
		return fmt.Errorf("%w: nil reservation", ErrInvalid)
	}
	if r.owner != s {
		return fmt.Errorf("%w: reservation %s was admitted by another store", ErrInvalid, r.id)
	}
	return nil
}

// newID returns a random reservation id: 128 bits, so ids of reservations
// made by different processes sharing one store never collide.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// windowStart aligns now (Unix ms) down to a multiple of window.
func windowStart(nowMs int64, window time.Duration) int64 {
	w := int64(window) / ms
	return nowMs - nowMs%w
}

// state builds an item's State from its counter's figures.
func state(it Item, nowMs, start, used, reserved int64) State {
	s := State{Limit: it.Max, Remaining: max(0, it.Max-used-reserved)}
	if it.Kind.Windowed() {
		end := start + int64(it.Window)/ms
		s.Reset = time.UnixMilli(end)
		s.ResetIn = time.Duration(end-nowMs) * time.Millisecond
	}
	return s
}
