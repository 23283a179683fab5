package oncall

import "time"

// ShiftUnit is the unit of a Layer's ShiftLength.
type ShiftUnit string

const (
	// UnitHours shifts are fixed durations in absolute time; they ignore DST.
	UnitHours ShiftUnit = "HOURS"
	// UnitDays shifts keep HandoffAt's local wall-clock time across DST.
	UnitDays ShiftUnit = "DAYS"
	// UnitWeeks shifts keep HandoffAt's local weekday and wall-clock time.
	UnitWeeks ShiftUnit = "WEEKS"
)

// Restriction limits a layer to windows of the week, in the schedule's zone:
// from StartDay at StartMinute (minutes after local midnight) for
// DurationMinutes of wall-clock time. Weekdays 09:00-17:00 is five
// restrictions. A window may wrap past the end of the week (Saturday 22:00
// for 4h ends Sunday 02:00). A layer with no restrictions is always active.
type Restriction struct {
	StartDay        time.Weekday
	StartMinute     int // 0..1439, local wall clock
	DurationMinutes int // 1..10080
}

// Layer is one rotation of a schedule.
type Layer struct {
	Name        string
	ShiftLength int // >= 1, in ShiftUnit
	ShiftUnit   ShiftUnit
	// HandoffAt is the instant of one hand-off, read in the schedule's zone.
	// The rotation is anchored on it: participant 0 starts at HandoffAt,
	// participant 1 one shift later, and so on; it extends backwards too.
	// HandoffAt itself is always a hand-off; the others keep its local
	// wall-clock time, resolved as the package documentation describes
	// when a transition skips or repeats it.
	HandoffAt time.Time
	// ParticipantIDs are in rotation order and may repeat a user. An empty
	// layer has nobody on call.
	ParticipantIDs []int
	Restrictions   []Restriction
}

// Override puts UserID on call during [Start, End).
type Override struct {
	UserID int
	// ReplaceUserID 0 replaces everyone on call in the window (the override
	// users alone are on call); otherwise only that user is replaced, and
	// only while they are on call.
	ReplaceUserID int
	Start, End    time.Time
	// Alongside puts UserID on call in addition to whoever else is, after
	// every replacement: it never takes anyone off call, which is why a
	// participant may create one for themselves. ReplaceUserID must be 0.
	Alongside bool
}

// Schedule is a complete on-call schedule.
type Schedule struct {
	TimeZone string // IANA name, e.g. "Europe/Berlin"
	// Layers[0] is the lowest; a higher layer covers lower ones wherever it
	// has someone on call.
	Layers    []Layer
	Overrides []Override
}

// Shift is one span of the final timeline.
type Shift struct {
	Start, End time.Time // UTC, [Start, End)
	UserIDs    []int     // sorted, non-empty
}
