//! `string_agg(x, d ORDER BY k)` beside another `string_agg` ordered
//! otherwise (`string_agg(name, ', ' ORDER BY name), string_agg(sku, ', '
//! ORDER BY placed_at)`).
//!
//! DataFusion 55's `string_agg` declares that its input must arrive sorted
//! (the default of an aggregate), so two of them sorted by different keys
//! in one query failed: "Conflicting ordering requirements in aggregate
//! functions is not supported". Yet its ordered form keeps its values with
//! their keys and sorts them itself (it runs on `array_agg`'s accumulator,
//! which does, and which says so). This is DataFusion's `string_agg` saying
//! the same: the input's order helps it, but is not needed.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, Signature,
};

/// `string_agg`, for the session's registry (in place of DataFusion's).
pub fn string_agg() -> AggregateUDF {
    AggregateUDF::new_from_impl(SortsItself {
        inner: datafusion::functions_aggregate::string_agg::string_agg_udaf(),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SortsItself {
    inner: Arc<AggregateUDF>,
}

impl AggregateUDFImpl for SortsItself {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::SoftRequirement
    }

    /// Sorted input or not, the accumulator sorts (`array_agg`'s, made
    /// without knowing the input is sorted): the same function either way.
    fn with_beneficial_ordering(
        self: Arc<Self>,
        _beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        Ok(Some(self))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Reversed(Arc::new(string_agg()))
    }
}
