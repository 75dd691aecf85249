//! `corelog group reset-offsets --to-datetime`: RFC 3339 date-times to
//! milliseconds since the Unix epoch, the timestamps ListOffsets takes.
//! Pure functions (proleptic Gregorian calendar, leap years, `Z` or
//! `+hh:mm` offsets), with no date-time crate.

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`; a space for `T` is accepted).
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let invalid = || format!("'{text}' is not an RFC 3339 date-time like 2024-05-01T12:00:00Z");
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = text.get(range).ok_or_else(invalid)?;
        if digits.bytes().all(|byte| byte.is_ascii_digit()) {
            digits.parse::<i64>().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(invalid());
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().map_err(|_| invalid())?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let hours = rest[1..3].parse::<i64>().map_err(|_| invalid())?;
            let minutes = rest[4..6].parse::<i64>().map_err(|_| invalid())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
        _ => return Err(invalid()),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_date_times_become_epoch_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T12:00:00Z").unwrap(),
            1_714_564_800_000
        );
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T14:00:00.25+02:00").unwrap(),
            1_714_564_800_250
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29 00:00:00.123456Z").unwrap(),
            1_709_164_800_123
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z").unwrap(), -1_000);
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00+0200",
            "yesterday",
            "2024-05-01T12:00:00.Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }
}
