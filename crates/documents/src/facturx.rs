//! The Factur-X / ZUGFeRD CII XML of a document, EN 16931 profile (the French e-invoicing
//! format): header, parties, one line item per invoice line, VAT breakdown and totals.

use crate::{decimal, percent, quantity, Document, Party};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn date102(iso: &str) -> String {
    iso.replace('-', "")
}

fn category(rate_bp: i64) -> &'static str {
    if rate_bp > 0 {
        "S"
    } else {
        "Z"
    }
}

fn party(out: &mut String, tag: &str, p: &Party) {
    let _ = write!(out, "<ram:{tag}><ram:Name>{}</ram:Name>", esc(&p.name));
    if let Some(id) = &p.company_id {
        // ISO 6523 scheme 0002: the French SIRENE register.
        let _ = write!(out, "<ram:SpecifiedLegalOrganization><ram:ID schemeID=\"0002\">{}</ram:ID></ram:SpecifiedLegalOrganization>", esc(id));
    }
    let _ = write!(out, "<ram:PostalTradeAddress><ram:PostcodeCode>{}</ram:PostcodeCode><ram:LineOne>{}</ram:LineOne>", esc(&p.postal_code), esc(&p.address_line1));
    if let Some(l2) = &p.address_line2 {
        let _ = write!(out, "<ram:LineTwo>{}</ram:LineTwo>", esc(l2));
    }
    let _ = write!(
        out,
        "<ram:CityName>{}</ram:CityName><ram:CountryID>{}</ram:CountryID></ram:PostalTradeAddress>",
        esc(&p.city),
        esc(&p.country)
    );
    if let Some(email) = &p.email {
        let _ = write!(out, "<ram:URIUniversalCommunication><ram:URIID schemeID=\"EM\">{}</ram:URIID></ram:URIUniversalCommunication>", esc(email));
    }
    if let Some(vat) = &p.vat_number {
        let _ = write!(out, "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>", esc(vat));
    }
    let _ = write!(out, "</ram:{tag}>");
}

/// The CII XML (Factur-X EN 16931) of a document.
pub fn cii_xml(d: &Document) -> String {
    let mut x = String::with_capacity(4096);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">"#);
    x.push_str("<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>");
    let type_code = if d.kind == "credit_note" {
        "381"
    } else {
        "380"
    };
    let _ = write!(
        x,
        "<rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{type_code}</ram:TypeCode><ram:IssueDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:IssueDateTime>",
        esc(&d.number),
        date102(&d.issue_date)
    );
    if let Some(note) = &d.note {
        let _ = write!(
            x,
            "<ram:IncludedNote><ram:Content>{}</ram:Content></ram:IncludedNote>",
            esc(note)
        );
    }
    let _ = write!(x, "<ram:IncludedNote><ram:Content>{}</ram:Content><ram:SubjectCode>PMT</ram:SubjectCode></ram:IncludedNote>", esc(&d.payment_terms));
    x.push_str("</rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>");
    for (i, l) in d.lines.iter().enumerate() {
        let _ = write!(
            x,
            "<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID></ram:AssociatedDocumentLineDocument>\
             <ram:SpecifiedTradeProduct><ram:Name>{}</ram:Name></ram:SpecifiedTradeProduct>\
             <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>\
             <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"C62\">{}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>\
             <ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>{}</ram:CategoryCode><ram:RateApplicablePercent>{}</ram:RateApplicablePercent></ram:ApplicableTradeTax>\
             <ram:BillingSpecifiedPeriod><ram:StartDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:StartDateTime><ram:EndDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:EndDateTime></ram:BillingSpecifiedPeriod>\
             <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>",
            i + 1,
            esc(&l.description),
            decimal(l.unit_price),
            quantity(l.quantity_milli),
            category(l.vat_rate_bp),
            percent(l.vat_rate_bp),
            date102(&l.period_start),
            date102(&l.period_end),
            decimal(l.amount),
        );
    }
    x.push_str("<ram:ApplicableHeaderTradeAgreement>");
    if let Some(id) = &d.buyer.company_id {
        let _ = write!(x, "<ram:BuyerReference>{}</ram:BuyerReference>", esc(id));
    }
    party(&mut x, "SellerTradeParty", &d.seller);
    party(&mut x, "BuyerTradeParty", &d.buyer);
    x.push_str("</ram:ApplicableHeaderTradeAgreement><ram:ApplicableHeaderTradeDelivery/><ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>");
    for v in &d.vat {
        let _ = write!(
            x,
            "<ram:ApplicableTradeTax><ram:CalculatedAmount>{}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>{}<ram:BasisAmount>{}</ram:BasisAmount><ram:CategoryCode>{}</ram:CategoryCode><ram:RateApplicablePercent>{}</ram:RateApplicablePercent></ram:ApplicableTradeTax>",
            decimal(v.vat),
            if v.rate_bp == 0 { "<ram:ExemptionReason>Taux zéro</ram:ExemptionReason>" } else { "" },
            decimal(v.base),
            category(v.rate_bp),
            percent(v.rate_bp),
        );
    }
    x.push_str("<ram:SpecifiedTradePaymentTerms>");
    let _ = write!(
        x,
        "<ram:Description>{}</ram:Description>",
        esc(&d.payment_terms)
    );
    if let Some(due) = &d.due_date {
        let _ = write!(x, "<ram:DueDateDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:DueDateDateTime>", date102(due));
    }
    x.push_str("</ram:SpecifiedTradePaymentTerms>");
    let _ = write!(
        x,
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount><ram:TaxBasisTotalAmount>{}</ram:TaxBasisTotalAmount>\
         <ram:TaxTotalAmount currencyID=\"EUR\">{}</ram:TaxTotalAmount><ram:GrandTotalAmount>{}</ram:GrandTotalAmount><ram:DuePayableAmount>{}</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        decimal(d.total_excl),
        decimal(d.total_excl),
        decimal(d.total_vat),
        decimal(d.total_incl),
        decimal(d.total_incl),
    );
    if let Some(n) = &d.credited_number {
        let _ = write!(x, "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>", esc(n));
    }
    x.push_str("</ram:ApplicableHeaderTradeSettlement></rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>\n");
    x
}
