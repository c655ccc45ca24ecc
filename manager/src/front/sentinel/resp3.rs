//! RESP3 for clients that ask for it with `HELLO 3` (Lettuce and go-redis do by default):
//! replies are built as RESP2 frames and converted here on the way out, in the shapes Redis
//! Sentinel gives them in RESP3: `HELLO` and a master's or replica's fields as maps, lists
//! of masters, replicas and sentinels as arrays of maps, pub/sub messages as pushes.

use redis_protocol::resp2::types::BytesFrame as Frame;
use redis_protocol::resp3::types::{BytesFrame as Frame3, FrameMap};

/// How a reply is shaped in RESP3, from the request that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// As in RESP2 (arrays, strings, numbers, errors, null).
    Plain,
    /// A flat `[k, v, k, v, ...]` array is a map.
    Map,
    /// An array of such maps.
    ArrayOfMaps,
    /// Pub/sub: every array is a push.
    Push,
}

/// The shape of the reply to `args` (lower-cased command first).
pub(super) fn shape_of(args: &[String]) -> Shape {
    let word = |i: usize| args.get(i).map(|a| a.to_ascii_lowercase());
    match (word(0).as_deref(), word(1).as_deref()) {
        (Some("hello"), _) => Shape::Map,
        (Some("sentinel"), Some("master" | "primary")) => Shape::Map,
        (Some("sentinel"), Some("masters" | "primaries" | "replicas" | "slaves" | "sentinels")) => {
            Shape::ArrayOfMaps
        }
        (Some("subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe"), _) => Shape::Push,
        _ => Shape::Plain,
    }
}

/// `f` in RESP3, shaped as `shape` says.
pub(super) fn convert(f: Frame, shape: Shape) -> Frame3 {
    match (shape, f) {
        (Shape::Map, Frame::Array(v)) if v.len() % 2 == 0 => map(v),
        (Shape::ArrayOfMaps, Frame::Array(v)) => Frame3::Array {
            data: v.into_iter().map(|e| convert(e, Shape::Map)).collect(),
            attributes: None,
        },
        (Shape::Push, Frame::Array(v)) => Frame3::Push {
            data: v.into_iter().map(plain).collect(),
            attributes: None,
        },
        (_, f) => plain(f),
    }
}

fn map(v: Vec<Frame>) -> Frame3 {
    let mut data = FrameMap::default();
    let mut it = v.into_iter();
    while let (Some(k), Some(val)) = (it.next(), it.next()) {
        data.insert(plain(k), plain(val));
    }
    Frame3::Map {
        data,
        attributes: None,
    }
}

fn plain(f: Frame) -> Frame3 {
    match f {
        Frame::SimpleString(data) => Frame3::SimpleString {
            data,
            attributes: None,
        },
        Frame::Error(data) => Frame3::SimpleError {
            data,
            attributes: None,
        },
        Frame::Integer(data) => Frame3::Number {
            data,
            attributes: None,
        },
        Frame::BulkString(data) => Frame3::BlobString {
            data,
            attributes: None,
        },
        Frame::Array(v) => Frame3::Array {
            data: v.into_iter().map(plain).collect(),
            attributes: None,
        },
        Frame::Null => Frame3::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_protocol::bytes::Bytes;

    fn b(s: &str) -> Frame {
        Frame::BulkString(Bytes::from(s.to_string()))
    }

    #[test]
    fn replies_take_sentinels_resp3_shapes() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(shape_of(&args("SENTINEL MASTERS")), Shape::ArrayOfMaps);
        assert_eq!(
            shape_of(&args("sentinel get-master-addr-by-name m")),
            Shape::Plain
        );
        let fields = Frame::Array(vec![b("name"), b("m"), b("port"), b("6379")]);
        let Frame3::Map { data, .. } = convert(fields.clone(), Shape::Map) else {
            panic!("a map");
        };
        assert_eq!(data.len(), 2);
        let Frame3::Array { data, .. } = convert(Frame::Array(vec![fields]), Shape::ArrayOfMaps)
        else {
            panic!("an array");
        };
        assert!(matches!(data[0], Frame3::Map { .. }));
        let message = Frame::Array(vec![b("message"), b("+switch-master"), b("m 1 2 3 4")]);
        assert!(matches!(convert(message, Shape::Push), Frame3::Push { .. }));
        assert_eq!(
            convert(Frame::Integer(3), Shape::Plain),
            Frame3::Number {
                data: 3,
                attributes: None
            }
        );
    }
}
