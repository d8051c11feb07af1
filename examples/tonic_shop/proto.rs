//! The messages of `shop.v1.Orders`, written by hand as prost structs
//! instead of generated from a `.proto` (no protoc in the build). The
//! tests' client includes this file too, so both sides speak the same
//! wire format:
//!
//! ```proto
//! service Orders {
//!   rpc Get(GetOrder) returns (Order);
//!   rpc List(ListOrders) returns (stream Order);
//! }
//! ```

/// `/shop.v1.Orders/Get`'s request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetOrder {
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `/shop.v1.Orders/List`'s request: one customer's orders, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOrders {
    #[prost(int64, tag = "1")]
    pub customer_id: i64,
}

/// An order, answered by `Get` and streamed by `List`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Order {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub customer_id: i64,
    #[prost(int64, tag = "3")]
    pub total_cents: i64,
}
