using System;
using System.Collections.Generic;
using Acme.Billing.Models;

namespace Acme.Billing
{
    /// <summary>Computes invoices.</summary>
    public class InvoiceService : IInvoiceService
    {
        private readonly List<Invoice> _invoices = new List<Invoice>();

        public InvoiceService() { }

        public int Count { get; private set; }

        public Invoice Create(Customer customer, decimal amount)
        {
            var invoice = new Invoice(customer, amount);
            _invoices.Add(invoice);
            Count++;
            return invoice;
        }

        public decimal Total() => _invoices.Sum(i => i.Amount);
    }

    public interface IInvoiceService
    {
        Invoice Create(Customer customer, decimal amount);
    }

    public struct Money
    {
        public decimal Amount;
        public string Currency;
    }

    public enum InvoiceState { Draft, Sent, Paid }

    public record Customer(string Name, string Email);

    public delegate void InvoiceCreated(Invoice invoice);
}
