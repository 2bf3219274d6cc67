//! BER-TLV as used by the LDS and secure messaging (ISO/IEC 7816-4 §5.2, X.690 for the ASN.1
//! parts): tags of up to 3 bytes, definite lengths of up to 4 bytes. Parsing is total: every
//! error says what went wrong and at which offset of the input.

/// One data object, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag bytes as a number (`0x5F1F`, `0x7F61`, `0x30`).
    pub tag: u32,
    pub value: &'a [u8],
    /// The whole object: tag, length and value (hashes and signatures cover these bytes).
    pub raw: &'a [u8],
    /// Offset of the object in the buffer it was parsed from.
    pub offset: usize,
}

impl Tlv<'_> {
    /// Bit 6 of the first tag byte.
    pub fn constructed(&self) -> bool {
        self.raw.first().is_some_and(|b| b & 0x20 != 0)
    }
}

/// A malformed TLV: what, and the byte offset where (relative to the parsed buffer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {offset}")]
pub struct TlvError {
    pub what: &'static str,
    pub offset: usize,
}

fn err<T>(what: &'static str, offset: usize) -> Result<T, TlvError> {
    Err(TlvError { what, offset })
}

/// Tag and length of the object at the start of `input`: (tag, header length, value length).
/// Enough to know a file's size from its first bytes (chunked reads).
pub fn header(input: &[u8]) -> Result<(u32, usize, usize), TlvError> {
    let Some(&first) = input.first() else {
        return err("empty input where a tag was expected", 0);
    };
    let mut tag = u32::from(first);
    let mut pos = 1;
    if first & 0x1F == 0x1F {
        loop {
            let Some(&b) = input.get(pos) else {
                return err("tag runs past the end", pos);
            };
            tag = (tag << 8) | u32::from(b);
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos >= 3 {
                return err("tag longer than 3 bytes", pos);
            }
        }
    }
    let Some(&l) = input.get(pos) else {
        return err("length missing", pos);
    };
    let len_at = pos;
    pos += 1;
    let len = match l {
        0..=0x7F => usize::from(l),
        0x80 => return err("indefinite length is not allowed", len_at),
        0x81..=0x84 => {
            let n = usize::from(l & 0x7F);
            let Some(bytes) = input.get(pos..pos + n) else {
                return err("length bytes run past the end", pos);
            };
            pos += n;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        }
        _ => return err("length of more than 4 bytes", len_at),
    };
    Ok((tag, pos, len))
}

/// The object at the start of `input` and the rest after it.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, hlen, len) = header(input)?;
    let end = hlen
        .checked_add(len)
        .filter(|end| *end <= input.len())
        .ok_or(TlvError {
            what: "value runs past the end",
            offset: hlen,
        })?;
    Ok((
        Tlv {
            tag,
            value: &input[hlen..end],
            raw: &input[..end],
            offset: 0,
        },
        &input[end..],
    ))
}

/// Every object in `input`, in order (offsets relative to `input`).
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let offset = input.len() - rest.len();
        let (mut tlv, after) = parse_one(rest).map_err(|e| TlvError {
            what: e.what,
            offset: offset + e.offset,
        })?;
        tlv.offset = offset;
        out.push(tlv);
        rest = after;
    }
    Ok(out)
}

/// The single object that must make up `input` (nothing may follow), with tag `tag`.
pub fn expect(input: &[u8], tag: u32) -> Result<Tlv<'_>, TlvError> {
    let (tlv, rest) = parse_one(input)?;
    if tlv.tag != tag {
        return err("unexpected tag", 0);
    }
    if !rest.is_empty() {
        return err("bytes after the object", tlv.raw.len());
    }
    Ok(tlv)
}

/// The first object with `tag` among the objects of `input`.
pub fn find(input: &[u8], tag: u32) -> Result<Option<Tlv<'_>>, TlvError> {
    Ok(parse_all(input)?.into_iter().find(|t| t.tag == tag))
}

/// Encodes a definite length (DER: shortest form).
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes tag ‖ length ‖ value.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
    encode_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_lengths() {
        assert_eq!(header(&[0x60, 0x14]).unwrap(), (0x60, 2, 0x14));
        assert_eq!(
            header(&[0x5F, 0x1F, 0x81, 0x90]).unwrap(),
            (0x5F1F, 4, 0x90)
        );
        assert_eq!(
            header(&[0x7F, 0x61, 0x82, 0x12, 0x34]).unwrap(),
            (0x7F61, 5, 0x1234)
        );
        assert_eq!(header(&[0x77, 0x83, 1, 0, 0]).unwrap(), (0x77, 5, 0x10000));
        assert!(header(&[]).is_err());
        assert!(header(&[0x5F]).is_err());
        assert!(header(&[0x5F, 0x81, 0x81, 0x01]).is_err());
        assert!(header(&[0x30, 0x80]).is_err());
        assert!(header(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(header(&[0x30, 0x82, 1]).is_err());
    }

    #[test]
    fn objects_round_trip() {
        for len in [0, 1, 127, 128, 255, 256, 70000] {
            let value = vec![0xAB; len];
            for tag in [0x04, 0x5F2E, 0x7F61] {
                let bytes = encode(tag, &value);
                let tlv = expect(&bytes, tag).unwrap();
                assert_eq!(tlv.value, &value[..]);
                assert_eq!(tlv.raw, &bytes[..]);
            }
        }
        let two = [encode(0x87, &[1, 2]), encode(0x99, &[0x90, 0])].concat();
        let all = parse_all(&two).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].offset, 4);
        assert_eq!(find(&two, 0x99).unwrap().unwrap().value, [0x90, 0]);
        let e = parse_all(&[0x87, 2, 1, 2, 0x99, 5, 0]).unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(expect(&[0x87, 1, 0, 0], 0x87).is_err());
        assert!(expect(&[0x87, 1, 0], 0x88).is_err());
    }
}
